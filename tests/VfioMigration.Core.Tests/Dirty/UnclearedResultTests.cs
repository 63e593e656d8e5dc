using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using VfioMigration.Core.Vfio;
using Xunit;

namespace VfioMigration.Core.Tests.Dirty;

/// <summary>
/// A dirty-bitmap result is not cleared before the kernel writes it: only the words the kernel does not
/// write whole are zeroed (DirtyBitmapPlan.ZeroUnwritten). These tests hand the query memory full of stale
/// ones, so a word the rule forgets shows up as pages that read dirty but were never mapped.
/// </summary>
public class UnclearedResultTests
{
    private const ulong Page = 4096;
    private const ulong Stale = 0xA5A5_A5A5_A5A5_A5A5;

    private static VfioContainer OpenBehindTheIommu()
    {
        // A PCI device without pinning: every mapped page reads dirty on every read.
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, SimDeviceExamples.V2PciDevice("0000:00:06.0")));
        var c = VfioContainer.Open(new VfioHost(kernel));
        c.Attach(10);
        c.SetIommu();
        c.UninitializedResult = n =>
        {
            var words = GC.AllocateArray<ulong>(n, pinned: true);
            words.AsSpan().Fill(Stale);
            return words;
        };
        return c;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void MappingsAtAnyBitWithGapsReadExactlyTheirPagesFromStaleMemory(int seed)
    {
        var random = new Random(seed);
        using var c = OpenBehindTheIommu();
        // Mappings of 1-200 pages, gaps of 0-150 pages (adjacent mappings too): first bits land mid-word.
        ulong iova = 0x1000_0000;
        var mappings = new List<(ulong Iova, ulong Size)>();
        for (int i = 0; i < 12; i++)
        {
            iova += (ulong)random.Next(0, 151) * Page;
            ulong size = (ulong)random.Next(1, 201) * Page;
            c.Map(iova, size);
            mappings.Add((iova, size));
            iova += size;
        }
        c.StartDirtyTracking();
        // A range that starts and ends in the space around the mappings, as Get-DirtyBitmap -Iova -Size may ask.
        ulong start = mappings[0].Iova - (ulong)random.Next(0, 70) * Page;
        ulong end = iova + (ulong)random.Next(0, 70) * Page;
        var bitmap = c.GetDirtyBitmap(start, end - start);

        var expected = new bool[(end - start) / Page];
        foreach (var (mIova, mSize) in mappings)
            for (ulong p = (mIova - start) / Page; p < (mIova - start + mSize) / Page; p++) expected[p] = true;
        var words = bitmap.GetWords();
        for (int p = 0; p < expected.Length; p++)
            Assert.True(expected[p] == ((words[p / 64] >> (p % 64) & 1) != 0), $"seed {seed}: page {p} of the range reads {(expected[p] ? "clean" : "dirty")}");
        Assert.Equal((ulong)expected.Count(d => d), bitmap.DirtyPages);
        // The bits past the last page of the last word read 0 as well (what GetWords shows a user).
        int tail = expected.Length % 64;
        if (tail != 0) Assert.Equal(0UL, words[^1] >> tail);
    }

    [Fact]
    public void TheFirstQueryAfterStartTakesTheResultPreparedThenAndLaterQueriesAgreeWithIt()
    {
        using var c = OpenBehindTheIommu();
        c.Map(0x1_0000_0000, 128UL << 30); // 128 GiB above the MSI window: with the gap, a 6 MiB bitmap, large enough to be prepared
        c.Map(0x30_0000_0000, 1UL << 20);  // and a mapping past a gap
        c.StartDirtyTracking();
        var (extentIova, extentSize) = c.MappedExtent!.Value;
        var first = c.GetDirtyBitmap(extentIova, extentSize);
        var second = c.GetDirtyBitmap(extentIova, extentSize);
        Assert.Equal((128UL << 30) / Page + 256, first.DirtyPages);
        Assert.Equal(first.DirtyPages, second.DirtyPages);
        Assert.Equal(first.Runs, second.Runs);
        Assert.Equal(2UL, second.Runs);
    }

    [Fact]
    public void ACallReadIntoScratchIsZeroedWholeBecauseItIsOredIn()
    {
        // Two mappings whose second starts mid-word and is read by a call of its own (as after a gap too
        // large for one call): every word of that call is ORed into, so every word must read 0 first.
        var words = Enumerable.Repeat(Stale, 8).ToArray();
        var mappings = new List<(ulong, ulong)> { (0, 64 * Page), (100 * Page, 300 * Page) };
        var calls = new List<BitmapCall> { new(0, 64 * Page), new(100 * Page, 300 * Page) };
        DirtyBitmapPlan.ZeroUnwritten(words, mappings, calls, 0, 512 * Page, Page);
        Assert.Equal(Stale, words[0]);                    // written whole by the first mapping
        Assert.All(words[1..7], w => Assert.Equal(0UL, w)); // the gap, then the scratch call's words
        Assert.Equal(0UL, words[7]);                      // the space after the last mapping
    }
}
