using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using VfioMigration.Core.Dirty;

namespace VfioMigration.Benchmarks;

/// <summary>
/// The module's benchmarks. Each prints a line "Pn: ..." with its numbers; build.ps1 -Task Bench runs
/// them and docs/performance.md records a run. Speed goals live here, not in tests.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string which = args.Length > 0 ? args[0] : "all";
        if (which is "all" or "P1") P1();
        if (which is "all" or "P2" or "P3") Type1Benchmarks.Run(which);
        if (which is "all" or "P4") StateBenchmarks.P4();
        return 0;
    }

    /// <summary>
    /// P1: summary (popcount) and run enumeration of a 32 MiB bitmap (a 1 TiB guest at 4 KiB pages), beside
    /// a C -O3 loop doing the same work on the same bytes, compiled here with gcc -march=native.
    /// </summary>
    private static void P1()
    {
        const int words = 32 * 1024 * 1024 / 8;
        var bitmap = Pattern(words, seed: 42);
        string dir = Path.Combine(Path.GetTempPath(), "vfiomigration-bench");
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, "bitmap.bin");
        File.WriteAllBytes(file, MemoryMarshal.AsBytes(bitmap.AsSpan()).ToArray());

        const int rounds = 15;
        ulong bits = (ulong)words * 64;
        long bestPop = long.MaxValue, bestRuns = long.MaxValue;
        ulong pop = 0, runs = 0;
        var starts = new ulong[RunBound(bitmap)];
        var lengths = new ulong[starts.Length];
        for (int r = 0; r < rounds; r++)
        {
            var t = Stopwatch.StartNew();
            pop = BitmapMath.PopCount(bitmap, bits);
            long t1 = t.ElapsedTicks;
            int k = 0;
            BitmapMath.ForEachRun(bitmap, bits, (first, length) => { starts[k] = first; lengths[k++] = length; });
            long t2 = t.ElapsedTicks;
            runs = (ulong)k;
            bestPop = Math.Min(bestPop, t1);
            bestRuns = Math.Min(bestRuns, t2 - t1);
        }
        double popMs = bestPop * 1000.0 / Stopwatch.Frequency, runsMs = bestRuns * 1000.0 / Stopwatch.Frequency;

        string exe = Path.Combine(dir, "bitmap_scan");
        string source = Path.Combine(AppContext.BaseDirectory, "bitmap_scan.c");
        Run("gcc", $"-O3 -march=native -o \"{exe}\" \"{source}\"");
        var c = Run(exe, $"\"{file}\" {rounds}").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(ulong.Parse).ToArray();
        if (c[0] != pop || c[1] != runs) throw new InvalidOperationException($"C and C# disagree: pop {c[0]}/{pop}, runs {c[1]}/{runs}");
        double cPopMs = c[2] / 1e6, cRunsMs = c[3] / 1e6;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"P1: 32 MiB bitmap, {pop} dirty pages in {runs} runs | summary C# {popMs:0.000} ms, C {cPopMs:0.000} ms, ratio {cPopMs / popMs:0.00}x | runs C# {runsMs:0.000} ms, C {cRunsMs:0.000} ms, ratio {cRunsMs / runsMs:0.00}x | total ratio {(cPopMs + cRunsMs) / (popMs + runsMs):0.00}x of C speed"));
    }

    /// <summary>A dirty pattern like a guest's: clean stretches, scattered pages, and long dirty runs.</summary>
    private static ulong[] Pattern(int words, int seed)
    {
        var r = new Random(seed);
        var w = new ulong[words];
        long bit = 0, total = (long)words * 64;
        while (bit < total)
        {
            bit += r.Next(1, 4096);                 // clean stretch
            int run = r.Next(0, 10) < 7 ? r.Next(1, 8) : r.Next(64, 2048);
            for (int i = 0; i < run && bit < total; i++, bit++) w[bit / 64] |= 1UL << (int)(bit % 64);
        }
        return w;
    }

    private static int RunBound(ulong[] w)
    {
        long n = 1;
        ulong carry = 0;
        foreach (ulong x in w)
        {
            n += System.Numerics.BitOperations.PopCount(x & ~((x << 1) | carry));
            carry = x >> 63;
        }
        return checked((int)n);
    }

    internal static string Run(string file, string arguments)
    {
        var psi = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed ({p.ExitCode}): {error}");
        return output.Trim();
    }
}
