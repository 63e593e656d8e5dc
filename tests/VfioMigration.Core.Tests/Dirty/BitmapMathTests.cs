using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.Dirty;

public class BitmapMathTests
{
    private static ulong[] Random(int words, int seed, double density)
    {
        var r = new System.Random(seed);
        var w = new ulong[words];
        for (int i = 0; i < words * 64; i++)
            if (r.NextDouble() < density) w[i / 64] |= 1UL << (i % 64);
        return w;
    }

    private static bool Bit(ulong[] w, ulong k) => (w[k / 64] & (1UL << (int)(k % 64))) != 0;

    [Theory]
    [InlineData(1, 0.5, 64UL)]
    [InlineData(3, 0.1, 150UL)]
    [InlineData(17, 0.9, 1000UL)]
    [InlineData(9, 0.0, 576UL)]
    public void PopCountCountsOnlyTheRequestedBits(int seed, double density, ulong bits)
    {
        var w = Random(20, seed, density);
        ulong naive = 0;
        for (ulong k = 0; k < bits; k++) if (Bit(w, k)) naive++;
        Assert.Equal(naive, BitmapMath.PopCount(w, bits));
    }

    [Theory]
    [InlineData(2000, 0.3, 1)]
    [InlineData(2047, 0.97, 2)]
    [InlineData(4096 + 5, 0.5, 3)]
    public void PopCountOfLargeBitmapsMatchesCountingBitByBit(int words, double density, int seed)
    {
        // Large enough for the vector path (and its widening every 31 vectors), with a scalar tail.
        var w = Random(words, seed, density);
        ulong bits = (ulong)words * 64 - 7;
        ulong naive = 0;
        for (ulong k = 0; k < bits; k++) if (Bit(w, k)) naive++;
        Assert.Equal(naive, BitmapMath.PopCount(w, bits));
    }

    [Theory]
    [InlineData(0UL, 128UL)]
    [InlineData(5UL, 64UL)]
    [InlineData(63UL, 70UL)]
    [InlineData(64UL, 1UL)]
    [InlineData(100UL, 200UL)]
    public void OrBitsPlacesBitsAtAnyOffsetAndKeepsWhatWasThere(ulong offset, ulong count)
    {
        var src = Random(8, 7, 0.5);
        var dst = Random(12, 8, 0.2);
        var before = (ulong[])dst.Clone();
        BitmapMath.OrBits(dst, offset, src, count);
        for (ulong k = 0; k < 12 * 64; k++)
        {
            bool expected = Bit(before, k) || (k >= offset && k < offset + count && Bit(src, k - offset));
            Assert.Equal(expected, Bit(dst, k));
        }
    }

    public static TheoryData<string, int, ulong> RunPatterns()
    {
        var data = new TheoryData<string, int, ulong>();
        foreach (string pattern in new[] { "empty", "full", "sparse", "half", "dense", "clustered", "alternating", "long-runs" })
            foreach (int batch in new[] { 1, 3, 4096 })
                foreach (ulong bits in new ulong[] { 1, 63, 64, 65, 64 * 40, 64 * 300 - 13, 64 * 1000 + 1 })
                    data.Add(pattern, batch, bits);
        return data;
    }

    private static ulong[] PatternWords(string pattern, ulong bits)
    {
        int n = (int)((bits + 63) / 64);
        var r = new Random(pattern.GetHashCode(StringComparison.Ordinal) ^ (int)bits);
        var w = new ulong[n + 1];
        w[n] = ulong.MaxValue; // past the bitmap's words: never read
        for (int i = 0; i < n; i++)
        {
            w[i] = pattern switch
            {
                "empty" => 0,
                "full" => ulong.MaxValue,
                "sparse" => r.Next(100) == 0 ? 1UL << r.Next(64) : 0,
                "half" => (ulong)r.NextInt64() ^ ((ulong)r.Next() << 63),
                "dense" => ~(r.Next(50) == 0 ? 1UL << r.Next(64) : 0UL),
                "alternating" => 0x5555555555555555UL,
                "long-runs" => (i / 7) % 2 == 0 ? ulong.MaxValue : i % 7 == 3 ? 0xff00UL : 0,
                _ => 0,
            };
        }
        if (pattern == "clustered")
            for (ulong k = (ulong)r.Next(200); k < bits; k += 200 + (ulong)r.Next(100))
                for (ulong j = k; j < Math.Min(bits, k + 64); j++) w[j / 64] |= 1UL << (int)(j % 64);
        // Bits past the end of the bitmap in its last word are set: the scanner must ignore them.
        if (bits % 64 != 0) w[n - 1] |= ~((1UL << (int)(bits % 64)) - 1);
        return w;
    }

    [Theory]
    [MemberData(nameof(RunPatterns))]
    public void TheScannerFindsExactlyTheMaximalRunsAndCountsTheBitsInOnePass(string pattern, int batch, ulong bits)
    {
        var w = PatternWords(pattern, bits);
        var naive = new List<BitRun>();
        ulong count = 0;
        for (ulong k = 0; k < bits;)
        {
            if (!Bit(w, k)) { k++; continue; }
            ulong s = k;
            while (k < bits && Bit(w, k)) k++;
            naive.Add(new BitRun(s, k - s));
            count += k - s;
        }
        var scanner = new BitRunScanner(bits);
        var output = new BitRun[batch];
        var runs = new List<BitRun>();
        int n;
        do
        {
            n = scanner.Read(w, output);
            Assert.True(n == batch || scanner.Done, "a short batch only at the end");
            runs.AddRange(output.Take(n));
        }
        while (!scanner.Done);
        Assert.Equal(0, scanner.Read(w, output));
        Assert.Equal(naive, runs);
        Assert.Equal(count, scanner.SetBits);
        Assert.Equal(count, BitmapMath.PopCount(w, bits));
        Assert.Equal((count, (ulong)naive.Count), BitmapMath.CountBitsAndRuns(w, bits));
    }

    [Theory]
    [InlineData(64 * 200 + 7)]
    [InlineData(64 * 4096)]
    public void CountingBitsAndRunsInVectorsGivesWhatTheScannerFinds(int bits)
    {
        foreach (string pattern in new[] { "half", "alternating", "clustered", "long-runs", "full" })
        {
            var w = PatternWords(pattern, (ulong)bits);
            var scanner = new BitRunScanner((ulong)bits);
            var output = new BitRun[100];
            ulong runs = 0;
            int n;
            while ((n = scanner.Read(w, output)) > 0) runs += (ulong)n;
            Assert.Equal((scanner.SetBits, runs), BitmapMath.CountBitsAndRuns(w, (ulong)bits));
        }
    }

    [Theory]
    // kernel-interface.md g.3 and the oracle/qemu#6 trace: range -> bitmap bytes at 4 KiB pages.
    [InlineData(0x200000UL, 64UL)]
    [InlineData(0xa0000UL, 0x18UL)]
    [InlineData(0x1000000UL, 0x200UL)]
    [InlineData(0x7ff00000UL, 0xffe0UL)]
    [InlineData(0x80000000UL, 0x10000UL)]
    [InlineData(0x10000000000UL, 32UL * 1024 * 1024)]
    [InlineData(0x80000000000UL, 256UL * 1024 * 1024)]
    public void BitmapBytesMatchTheKernelsRounding(ulong range, ulong bytes)
    {
        Assert.Equal(bytes, VfioConstants.DIRTY_BITMAP_BYTES(range / 4096));
        Assert.Equal((long)(bytes / 8), BitmapMath.WordsFor(range / 4096));
    }
}

public class DirtyBitmapTests
{
    [Fact]
    public void SummaryAndRunsDescribeTheBits()
    {
        var words = new ulong[] { 0b1110UL | (1UL << 63), 0b1UL, 0 };
        var b = new DirtyBitmap(0x10000000, 192 * 4096UL, 4096, words, DirtyScope.PinnedPages, VfioMigration.Core.Kernel.HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch);
        Assert.Equal(192UL, b.Pages);
        Assert.Equal(5UL, b.DirtyPages);
        Assert.Equal(5UL * 4096, b.DirtyBytes);
        Assert.Equal(Math.Round(500.0 / 192, 3), b.DirtyPercent);
        var runs = b.GetDirtyRanges();
        Assert.Equal(new[] { "0x10001000+0x3000", "0x1003f000+0x2000" }, runs.Select(r => r.ToString()));
        Assert.True(b.IsDirty(0x10001fff));
        Assert.False(b.IsDirty(0x10000000));
        Assert.False(b.IsDirty(0x20000000));
    }

    [Fact]
    public void AGranularitySeesTheBitmapInBlocksAndCountsTheDirtyPagesInEach()
    {
        // Pages 1-3, 63-64, 600 and 1023 of 1024 dirty; blocks of 512 pages (2 MiB).
        var words = new ulong[16];
        foreach (int p in new[] { 1, 2, 3, 63, 64, 600, 1023 }) words[p / 64] |= 1UL << (p % 64);
        var b = new DirtyBitmap(0x40000000, 1024 * 4096UL, 4096, words, DirtyScope.PinnedPages, VfioMigration.Core.Kernel.HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch);
        var blocks = b.EnumerateDirtyRanges(2 * 1024 * 1024).ToList();
        var only = Assert.Single(blocks);   // blocks 0 and 1 are adjacent: one range
        Assert.Equal((0x40000000UL, 4UL * 1024 * 1024, 7UL), (only.Iova.Value, only.Size, only.Pages));
        var small = b.EnumerateDirtyRanges(64 * 4096).Select(r => (r.Iova.Value - 0x40000000, r.Size / 4096, r.Pages)).ToList();
        Assert.Equal(new[] { (0UL, 128UL, 5UL), (576UL * 4096, 64UL, 1UL), (960UL * 4096, 64UL, 1UL) }, small);
        Assert.Equal("BadGranularity", Assert.Throws<VfioRuleException>(() => b.EnumerateDirtyRanges(1000)).RuleId);
    }

    [Fact]
    public void TheLastBlockIsClippedToTheBitmap()
    {
        var words = new ulong[] { 1UL << 9 };
        var b = new DirtyBitmap(0, 10 * 4096UL, 4096, words, DirtyScope.PinnedPages, VfioMigration.Core.Kernel.HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch);
        var only = Assert.Single(b.EnumerateDirtyRanges(8 * 4096));
        Assert.Equal((8UL * 4096, 2UL * 4096, 1UL), (only.Iova.Value, only.Size, only.Pages));
    }

    [Fact]
    public void EnumeratingTheRunsCountsTheDirtyPagesOnTheWay()
    {
        var words = new ulong[] { ulong.MaxValue, 0b1011 };
        var b = new DirtyBitmap(0, 128 * 4096UL, 4096, words, DirtyScope.PinnedPages, VfioMigration.Core.Kernel.HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch);
        Assert.Equal(new[] { (0UL, 66UL), (67UL, 1UL) }, b.EnumerateDirtyRanges().Select(r => (r.Iova.Value / 4096, r.Pages)));
        Assert.Equal(67UL, b.DirtyPages);
        Assert.Equal(2UL, b.Runs);
    }
}

public class IovaTests
{
    [Theory]
    [InlineData("0x10000000", 0x10000000UL)]
    [InlineData("0X1_0000", 0x10000UL)]
    [InlineData("4096", 4096UL)]
    public void ParsesHexAndDecimal(string text, ulong value) => Assert.Equal(value, Iova.Parse(text).Value);

    [Fact]
    public void PrintsAsHexAndComparesAsANumber()
    {
        Iova a = 0x10000000UL;
        Assert.Equal("0x10000000", a.ToString());
        Assert.True(a < new Iova(0x20000000));
        Assert.Equal(0, a.CompareTo(0x10000000));
        Assert.Equal(0x10001000UL, (a + 0x1000).Value);
        Assert.Throws<FormatException>(() => Iova.Parse("ten"));
    }
}
