using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Pictures;

namespace VfioMigration.Benchmarks;

/// <summary>P8: the heatmap of a 1 TiB bitmap (2^28 pages of 4 KiB, 32 MiB of bits): time, managed bytes and peak memory.</summary>
public static class PictureBenchmarks
{
    public static void P8()
    {
        const ulong page = 4096, size = 1UL << 40;
        const int width = 1200, height = 800, reps = 7;
        var words = new ulong[size / page / 64];
        var r = new Random(1);
        // 1 % of the pages dirty, at random, and a 256 GiB hole between two mappings.
        for (long i = 0; i < words.LongLength * 64 / 100; i++)
        {
            long bit = r.NextInt64(words.LongLength * 64);
            words[bit / 64] |= 1UL << (int)(bit % 64);
        }
        var bitmap = new DirtyBitmap(0, size, page, words, DirtyScope.PinnedPages, HostKind.Simulated, "bench", DateTimeOffset.UtcNow)
        {
            MappedRanges = new[] { new MappedRange(0, 512UL << 30), new MappedRange(768UL << 30, 256UL << 30) },
        };
        _ = bitmap.DirtyPages;
        HeatmapPicture.RenderPng(bitmap, width, height);   // Skia, the fonts and the JIT, once
        GC.Collect();
        long rssBefore = Rss(), peakBefore = Peak();
        ResetPeak();
        var times = new double[reps];
        long allocated = 0;
        byte[] png = Array.Empty<byte>();
        for (int i = 0; i < reps; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var clock = Stopwatch.StartNew();
            png = HeatmapPicture.RenderPng(bitmap, width, height);
            times[i] = clock.Elapsed.TotalMilliseconds;
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        long peak = Peak();
        Array.Sort(times);
        string file = Path.Combine(Path.GetTempPath(), "vfiomigration-bench", "heatmap-1tib.png");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllBytes(file, png);
        long image = (long)width * height * 4;
        Console.WriteLine($"P8: 1 TiB heatmap {width}x{height}: median {times[reps / 2]:0.0} ms [{times[0]:0.0}-{times[^1]:0.0}] of {reps}; " +
                          $"managed {allocated / 1024.0 / 1024:0.00} MiB per render; peak RSS {(Math.Max(peak, peakBefore) - rssBefore) / 1024.0 / 1024:0.0} MiB above the " +
                          $"{rssBefore / 1024.0 / 1024:0} MiB before (bitmap 32 MiB, image {image / 1024.0 / 1024:0.0} MiB); PNG {png.Length / 1024} KiB: {file}");
    }

    // VmRSS and VmHWM of this process (/proc/self/status), in bytes; writing 5 to clear_refs resets VmHWM.
    private static long Rss() => Status("VmRSS:");

    private static long Peak() => Status("VmHWM:");

    // A shell writes it: .NET opens the file for writing with O_TRUNC, which /proc refuses, so a write from
    // here failed quietly and the peak included what earlier benchmarks of the process had held (P7's 2.5 GiB).
    private static void ResetPeak()
    {
        using var shell = System.Diagnostics.Process.Start("/bin/sh", new[] { "-c", $"echo 5 > /proc/{Environment.ProcessId}/clear_refs" });
        shell.WaitForExit();
        if (shell.ExitCode != 0) throw new InvalidOperationException("could not reset VmHWM through /proc/<pid>/clear_refs");
    }

    private static long Status(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key, StringComparison.Ordinal));
        return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
    }
}
