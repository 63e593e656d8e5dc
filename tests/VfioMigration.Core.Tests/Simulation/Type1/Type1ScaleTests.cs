using System;
using System.Collections.Generic;
using System.Diagnostics;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>
/// A 1 TiB guest: the simulated driver keeps dirty state sparse (no per-page memory) and fills a 32 MiB
/// bitmap (2^28 pages) in one call. The real assertion is on the bits; the time bound is loose.
/// </summary>
public class Type1ScaleTests
{
    private const ulong TiB = 1UL << 40;
    private const ulong Base = 1UL << 40;            // IOVA of the guest
    private const long BitmapBytes = 32L << 20;      // DIRTY_BITMAP_BYTES(2^28)

    /// <summary>The lab's host with a 48-bit IOMMU, so a 1 TiB guest fits (the lab's VT-d has 39 bits: 512 GiB).</summary>
    private static SimHostConfiguration WideIommu()
    {
        var config = SimTopologies.Lab();
        config.IovaRanges = new() { (0, (1UL << 48) - 1) };
        return config;
    }

    [Fact]
    public void MappingAndTrackingA1TiBGuestAllocatesNoPerPageState()
    {
        using var h = Type1Harness.With(WideIommu(), IommuGroup, MdevGroup);
        ulong guest = h.Guest((long)TiB);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, h.Map(Base, TiB, guest));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Detach(IommuGroup));                          // promotion: the whole TiB refilled dirty
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 4L << 20, $"mapping and tracking 1 TiB allocated {allocated} bytes (a dense bitmap would be 32 MiB)");
    }

    [Fact]
    public void GetBitmapOver1TiBOfAnIommuBackedGuestSetsAll2Pow28BitsQuickly()
    {
        using var h = Type1Harness.With(WideIommu(), IommuGroup);
        Assert.Equal(0, h.Map(Base, TiB, h.Guest((long)TiB)));
        Assert.Equal(0, h.Start());
        var bitmap = h.Buffer(BitmapBytes);

        var clock = Stopwatch.StartNew();
        int rc = h.GetBitmap(Base, TiB, bitmap);
        clock.Stop();

        Assert.Equal(0, rc);
        Assert.Equal(-1, bitmap.Span.IndexOfAnyExcept((byte)0xff));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"GET_BITMAP over 1 TiB took {clock.Elapsed}");
    }

    [Fact]
    public void GetBitmapOver1TiBOfAnMdevGuestReportsExactlyTheFewPagesWritten()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(Base, TiB, h.Guest((long)TiB)));
        Assert.Equal(0, h.Start());
        var pages = new long[] { 0, 63, 64, 1L << 20, (1L << 28) - 1 };
        foreach (long page in pages) Assert.Equal(0, h.Sim.DmaWrite(Base + (ulong)page * Page, 1));
        Assert.Equal(0, h.Sim.PinPages(Base + (1UL << 27) * Page, 2));
        var bitmap = h.Buffer(BitmapBytes);

        Assert.Equal(0, h.GetBitmap(Base, TiB, bitmap));

        var set = new List<long>();
        var span = bitmap.Span;
        for (int at = span.IndexOfAnyExcept((byte)0); at >= 0;)
        {
            for (int bit = 0; bit < 8; bit++)
                if ((span[at] & (1 << bit)) != 0) set.Add(at * 8L + bit);
            int next = span.Slice(at + 1).IndexOfAnyExcept((byte)0);
            at = next < 0 ? -1 : at + 1 + next;
        }
        Assert.Equal(new List<long> { 0, 63, 64, 1L << 20, 1L << 27, (1L << 27) + 1, (1L << 28) - 1 }, set);
    }
}
