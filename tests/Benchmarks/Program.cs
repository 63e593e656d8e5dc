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
        if (which is "all" or "P7") P7();
        if (which is "all" or "P2" or "P3") Type1Benchmarks.Run(which);
        if (which is "all" or "P4") StateBenchmarks.P4();
        if (which is "all" or "P8") PictureBenchmarks.P8();
        return 0;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void CountAndRunCount(ulong[] words, ulong nWords, out ulong dirty, out ulong runs);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate ulong CountAndRuns(ulong[] words, ulong nWords, ulong[] runStart, ulong[] runLength, out ulong dirty);

    /// <summary>
    /// P1: one scan of a 32 MiB bitmap (a 1 TiB guest at 4 KiB pages) for its dirty pages and its runs, C#
    /// (BitRunScanner, what Get-DirtyBitmap -AsRange and DirtyBitmap.EnumerateDirtyRanges run) against two C
    /// references (tests/Benchmarks/bitmap_ref.c, gcc -O3 -march=native, a shared library called through
    /// P/Invoke in this process), repetition by repetition, interleaved, on six patterns. Medians and spread
    /// (min-max) of 15 repetitions; the load average beside them.
    /// </summary>
    private static void P1()
    {
        const int words = 32 * 1024 * 1024 / 8;
        const int reps = 15;
        string dir = Path.Combine(Path.GetTempPath(), "vfiomigration-bench");
        Directory.CreateDirectory(dir);
        string lib = Path.Combine(dir, "libbitmapref.so");
        Run("gcc", $"-O3 -march=native -shared -fPIC -o \"{lib}\" \"{Path.Combine(AppContext.BaseDirectory, "bitmap_ref.c")}\"");
        var handle = NativeLibrary.Load(lib);
        var runCount = Marshal.GetDelegateForFunctionPointer<CountAndRunCount>(NativeLibrary.GetExport(handle, "count_and_run_count"));
        var runsOut = Marshal.GetDelegateForFunctionPointer<CountAndRuns>(NativeLibrary.GetExport(handle, "count_and_runs"));
        Console.WriteLine($"P1: load average {File.ReadAllText("/proc/loadavg").Trim()}; {reps} repetitions per pattern, interleaved: C# scan (runs written) / C# count+run count / C count+run count / C count+runs");
        var batch = new BitRun[4096];
        foreach (var (name, bitmap) in Patterns(words))
        {
            ulong bits = (ulong)words * 64;
            ulong cDirty = 0, cRuns = 0;
            runCount(bitmap, (ulong)words, out cDirty, out cRuns);
            var starts = new ulong[Math.Max(1UL, cRuns)];
            var lengths = new ulong[starts.Length];
            double[] cs = new double[reps], ca = new double[reps], cb = new double[reps], cc = new double[reps];
            ulong csDirty = 0, csRuns = 0;
            for (int r = 0; r < reps; r++)
            {
                var t = Stopwatch.StartNew();
                var scanner = new BitRunScanner(bits);
                ulong n = 0;
                int got;
                while ((got = scanner.Read(bitmap, batch)) > 0) n += (ulong)got;
                cs[r] = t.Elapsed.TotalMilliseconds;
                (csDirty, csRuns) = (scanner.SetBits, n);

                t.Restart();
                var (d0, r0) = BitmapMath.CountBitsAndRuns(bitmap, bits);
                cc[r] = t.Elapsed.TotalMilliseconds;

                t.Restart();
                runCount(bitmap, (ulong)words, out ulong d1, out ulong r1);
                ca[r] = t.Elapsed.TotalMilliseconds;

                t.Restart();
                ulong r2 = runsOut(bitmap, (ulong)words, starts, lengths, out ulong d2);
                cb[r] = t.Elapsed.TotalMilliseconds;
                if (d0 != csDirty || d1 != csDirty || d2 != csDirty || r0 != csRuns || r1 != csRuns || r2 != csRuns)
                    throw new InvalidOperationException($"P1 {name}: C and C# disagree: dirty {d1}/{d2}/{csDirty}, runs {r1}/{r2}/{csRuns}");
            }
            double ms = Median(cs), a = Median(ca), b = Median(cb), c = Median(cc);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"P1 {name,-12} dirty {csDirty,10} runs {csRuns,10} | count+run count: C# {c:0.000} ms [{cc.Min():0.000}-{cc.Max():0.000}], C {a:0.000} ms [{ca.Min():0.000}-{ca.Max():0.000}], ratio {a / c:0.00}x | count+runs: C# {ms:0.000} ms [{cs.Min():0.000}-{cs.Max():0.000}], C {b:0.000} ms [{cb.Min():0.000}-{cb.Max():0.000}], ratio {b / ms:0.00}x"));
        }
        NativeLibrary.Free(handle);
    }

    /// <summary>
    /// P7: -AsRange on a 50 %-random 1 TiB bitmap (67 million runs), the enumeration Get-DirtyBitmap -AsRange
    /// streams (DirtyBitmap.EnumerateDirtyRanges), each range counted and dropped as a pipeline consumer
    /// would: time, bytes allocated, and the growth of peak resident memory; and the same with -Granularity 2MB.
    /// </summary>
    private static void P7()
    {
        const int words = 32 * 1024 * 1024 / 8;
        var r = new Random(7);
        var w = new ulong[words];
        for (int i = 0; i < words; i++) w[i] = (ulong)r.NextInt64() ^ ((ulong)r.Next(2) << 63);
        var bitmap = new DirtyBitmap(0, (ulong)words * 64 * 4096, 4096, w, DirtyScope.AllMappedPages, VfioMigration.Core.Kernel.HostKind.Simulated, "bench", DateTimeOffset.Now);
        foreach (ulong granularity in new ulong[] { 0, 2 * 1024 * 1024 })
        {
            GC.Collect();
            long rss = Kib("VmRSS");
            Run("/bin/sh", $"-c \"echo 5 > /proc/{Environment.ProcessId}/clear_refs\"");
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            var t = Stopwatch.StartNew();
            ulong n = 0, pages = 0;
            foreach (var range in bitmap.EnumerateDirtyRanges(granularity)) { n++; pages += range.Pages; }
            double seconds = t.Elapsed.TotalSeconds;
            long bytes = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            long peak = Kib("VmHWM") - rss;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"P7: 50%-random 1 TiB bitmap, -AsRange{(granularity == 0 ? "" : " -Granularity 2MB")}: {n} ranges ({pages} dirty pages) in {seconds:0.00} s, {bytes / 1048576.0:0} MiB allocated (the ranges, each dropped), peak RSS growth {peak / 1024.0:0.0} MiB"));
        }
    }

    private static long Kib(string field) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private static double Median(double[] values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>The six patterns: empty, all dirty, 1 % random, 50 % random, clustered 64-page runs, alternating bits.</summary>
    private static System.Collections.Generic.IEnumerable<(string, ulong[])> Patterns(int words)
    {
        var r = new Random(42);
        ulong[] Make(Func<int, ulong> word)
        {
            var w = new ulong[words];
            for (int i = 0; i < words; i++) w[i] = word(i);
            return w;
        }
        yield return ("empty", new ulong[words]);
        yield return ("all-dirty", Make(_ => ulong.MaxValue));
        yield return ("random-1%", Make(_ =>
        {
            ulong x = 0;
            for (int b = 0; b < 64; b++) if (r.Next(100) == 0) x |= 1UL << b;
            return x;
        }));
        yield return ("random-50%", Make(_ => (ulong)r.NextInt64() ^ ((ulong)r.Next(2) << 63)));
        // Runs of 64 dirty pages starting anywhere, one per ~512 pages.
        var clustered = new ulong[words];
        for (long bit = r.Next(448); bit + 64 < (long)words * 64; bit += 448 + r.Next(128))
            for (long k = bit; k < bit + 64; k++) clustered[k / 64] |= 1UL << (int)(k % 64);
        yield return ("clustered-64", clustered);
        yield return ("alternating", Make(_ => 0x5555555555555555UL));
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
