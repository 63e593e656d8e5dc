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

    [Theory]
    [InlineData(2, 0.5)]
    [InlineData(4, 0.97)]
    [InlineData(5, 0.02)]
    public void RunsAreExactlyTheMaximalStretchesOfSetBits(int seed, double density)
    {
        var w = Random(10, seed, density);
        w[3] = ulong.MaxValue; w[4] = ulong.MaxValue; w[6] = 0;
        ulong bits = 10 * 64 - 13;
        var runs = new List<(ulong, ulong)>();
        BitmapMath.ForEachRun(w, bits, (f, l) => runs.Add((f, l)));
        var naive = new List<(ulong, ulong)>();
        for (ulong k = 0; k < bits;)
        {
            if (!Bit(w, k)) { k++; continue; }
            ulong s = k;
            while (k < bits && Bit(w, k)) k++;
            naive.Add((s, k - s));
        }
        Assert.Equal(naive, runs);
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
