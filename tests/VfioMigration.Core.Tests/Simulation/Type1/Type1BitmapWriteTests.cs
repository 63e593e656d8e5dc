using System;
using System.Collections.Generic;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>How the kernel writes the user's bitmap (update_user_bitmap; kernel-interface.md c.4).</summary>
public class Type1BitmapWriteTests
{
    private static ulong Word(VfioMigration.Core.Native.NativeBuffer b, int index) => BitConverter.ToUInt64(b.Span.Slice(index * 8, 8));

    private static void Fill(VfioMigration.Core.Native.NativeBuffer b, byte value) => b.Span.Fill(value);

    [Fact]
    public void BitsAreRelativeToTheRequestIovaNotAbsolute()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x10000000, 0x8000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.DmaWrite(0x10002000, 1));
        Assert.Equal(new List<long> { 2 }, h.Dirty(0x10000000, 0x8000));
        Assert.Equal(0, h.Sim.DmaWrite(0x10002000, 1));
        Assert.Equal(new List<long> { 5 + 2 }, h.Dirty(0x10000000 - 5 * Page, 0x8000 + 5 * Page));
    }

    [Fact]
    public void AMappingThatStartsOffAWordBoundaryOrsIntoTheUsersStaleWord()
    {
        // The range starts 3 pages before the mapping: its bits start at bit 3 of word 0, so the kernel reads
        // the user's word 0 and ORs all 64 of its bits into what it writes back. A caller that does not zero
        // its buffer gets its own stale bits back as "dirty".
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x10000000, 0x40000));                    // 64 pages: bits 3..66
        Assert.Equal(0, h.Start());
        var bitmap = h.Buffer(16);
        Fill(bitmap, 0);
        bitmap.Span[0] = 0b1000_0001;                                   // stale bits 0 and 7
        bitmap.Span[8] = 0xff;                                          // stale bits 64..71
        Assert.Equal(0, h.GetBitmap(0x10000000 - 3 * Page, 0x40000 + 3 * Page, bitmap));
        Assert.Equal(0b1000_0001UL, Word(bitmap, 0));                   // stale word 0 kept (ORed)
        Assert.Equal(0UL, Word(bitmap, 1));                             // word 1 overwritten with the mapping's clean bits
    }

    [Fact]
    public void AMappingThatStartsOnAWordBoundaryOverwritesWholeWordsAndLeavesGapWordsAlone()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x10000000, 0x3000));                     // 3 pages: bits 0..2 of word 0
        Assert.Equal(0, h.Map(0x10000000 + 128 * Page, 0x1000));       // 1 page: bit 128, word 2
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.DmaWrite(0x10001000, 1));
        var bitmap = h.Buffer(24);
        Fill(bitmap, 0xff);
        Assert.Equal(0, h.GetBitmap(0x10000000, 129 * Page, bitmap));
        Assert.Equal(0b010UL, Word(bitmap, 0));                         // whole u64 written: bits 3..63 cleared
        Assert.Equal(ulong.MaxValue, Word(bitmap, 1));                  // no mapping in word 1: never written
        Assert.Equal(0UL, Word(bitmap, 2));
    }

    [Fact]
    public void AllDirtyBitsOfAShiftedMappingLandInTheRightWords()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x10000000, 100 * Page));
        Assert.Equal(0, h.Start());
        var bitmap = h.Buffer(24);
        Assert.Equal(0, h.GetBitmap(0x10000000 - 60 * Page, 160 * Page, bitmap));
        Assert.Equal(0xF000000000000000UL, Word(bitmap, 0));           // bits 60..63
        Assert.Equal(ulong.MaxValue, Word(bitmap, 1));                  // bits 64..127
        Assert.Equal(0xFFFFFFFFUL, Word(bitmap, 2));                    // bits 128..159
    }

    [Fact]
    public void SparseDirtyPagesOfAShiftedMappingCrossWordBoundaries()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x10000000, 200 * Page));
        Assert.Equal(0, h.Start());
        foreach (ulong page in new ulong[] { 0, 4, 5, 100, 199 }) Assert.Equal(0, h.Sim.DmaWrite(0x10000000 + page * Page, 1));
        Assert.Equal(new List<long> { 60, 64, 65, 160, 259 }, h.Dirty(0x10000000 - 60 * Page, 260 * Page));
    }

    [Fact]
    public void EachMappingOfAClubbedRangeIsWrittenInIovaOrderSoALaterOneOrsOverAnEarlierOnesLastWord()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x10000000, 10 * Page));                  // bits 0..9
        Assert.Equal(0, h.Map(0x10000000 + 20 * Page, 10 * Page));      // bits 20..29, same word
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.DmaWrite(0x10000000 + 9 * Page, 1));
        Assert.Equal(0, h.Sim.DmaWrite(0x10000000 + 20 * Page, 1));
        Assert.Equal(new List<long> { 9, 20 }, h.Dirty(0x10000000, 30 * Page));
    }
}
