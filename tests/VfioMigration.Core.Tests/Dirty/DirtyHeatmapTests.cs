using System;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using Xunit;

namespace VfioMigration.Core.Tests.Dirty;

/// <summary>The heatmap's cells (one pass over the words) and its terminal view, against hand-counted bitmaps.</summary>
public class DirtyHeatmapTests
{
    private const ulong Page = 4096, Base = 0x10000000;

    /// <summary>
    /// 256 pages at 0x10000000 in two mappings with a hole: pages 0–127 and 192–255 mapped, 128–191 not.
    /// Dirty: pages 0–15, page 40, pages 200–202, pages 244–245.
    /// </summary>
    internal static DirtyBitmap Known()
    {
        var words = new ulong[4];
        void Set(int first, int count) { for (int p = first; p < first + count; p++) words[p / 64] |= 1UL << (p % 64); }
        Set(0, 16);
        Set(40, 1);
        Set(200, 3);
        Set(244, 2);
        return new DirtyBitmap(Base, 256 * Page, Page, words, DirtyScope.PinnedPages, HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch)
        {
            MappedRanges = new[] { new MappedRange(Base, 128 * Page), new MappedRange(Base + 192 * Page, 64 * Page) },
        };
    }

    [Fact]
    public void CellsHoldTheDirtyShareOfTheirMappedPagesAndGapsAreMarked()
    {
        var map = DirtyHeatmap.Compute(Known(), columns: 32, maxRows: 2);   // 4 pages a cell, 128 a row
        Assert.Equal(4UL, map.PagesPerCell);
        Assert.Equal(2, map.Rows);
        Assert.Equal(64, map.Cells);
        Assert.Equal(1f, map.Share(0, 0));
        Assert.Equal(1f, map.Share(0, 3));
        Assert.Equal(0f, map.Share(0, 4));
        Assert.Equal(0.25f, map.Share(0, 10));        // page 40 of pages 40–43
        Assert.True(map.IsGap(1, 0));                 // pages 128–131
        Assert.True(map.IsGap(1, 15));                // pages 188–191
        Assert.False(map.IsGap(1, 16));
        Assert.Equal(0.75f, map.Share(1, 18));        // pages 200–202 of 200–203
        Assert.Equal(0.5f, map.Share(1, 29));         // pages 244–245 of 244–247
        Assert.Equal(Base + 128 * Page, map.RowIova(1));
        Assert.Equal(2, map.Mappings.Count);
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(8UL)]
    [InlineData(64UL)]
    [InlineData(256UL)]
    public void CountsMatchAPageByPageCountAtEveryCellSize(ulong perCell)
    {
        var r = new Random(7);
        ulong pages = 5000;                                   // not a whole number of words
        var words = new ulong[(pages + 63) / 64];
        for (ulong p = 0; p < pages; p++) if (r.NextDouble() < 0.3) words[p / 64] |= 1UL << (int)(p % 64);
        words[^1] |= ulong.MaxValue << (int)(pages % 64);     // bits past the end must not count
        var dirty = new ulong[(pages + perCell - 1) / perCell];
        DirtyHeatmap.CountDirty(words, pages, perCell, dirty);
        var expected = new ulong[dirty.Length];
        for (ulong p = 0; p < pages; p++) if ((words[p / 64] & (1UL << (int)(p % 64))) != 0) expected[p / perCell]++;
        Assert.Equal(expected, dirty);
    }

    [Fact]
    public void ACellWithoutAMappedPageIsAGapEvenWithBitsSet()
    {
        var b = Known();
        var words = b.ToArray();
        words[2] |= 1;                                        // page 128, in the hole
        var odd = new DirtyBitmap(b.Iova, b.Size, b.PageSize, words, b.Scope, b.HostKind, b.Host, b.Timestamp) { MappedRanges = b.MappedRanges };
        var map = DirtyHeatmap.Compute(odd, 32, 2);
        Assert.True(map.IsGap(1, 0));
        Assert.Equal(' ', map.TextCell(1, 0));
    }

    [Fact]
    public void WithoutMappingsNoCellIsAGap()
    {
        var b = Known();
        var plain = new DirtyBitmap(b.Iova, b.Size, b.PageSize, b.ToArray(), b.Scope, b.HostKind, b.Host, b.Timestamp);
        var map = DirtyHeatmap.Compute(plain, 32, 2);
        Assert.False(map.MappingsKnown);
        Assert.False(map.IsGap(1, 0));
        Assert.Equal(0f, map.Share(1, 0));
    }

    [Fact]
    public void TheTerminalViewOfAKnownBitmapMatchesItsGoldenText()
    {
        // 60 characters: room for 47 cells, so 32 columns (a power of two) of 4 pages; a 10-character label, " │", the cells, "│".
        var lines = DirtyHeatmap.RenderText(Known(), width: 60, maxRows: 2);
        string expected = string.Join("\n",
            "Dirty pages 0x10000000–0x10100000 (1MiB), 4KiB pages",
            "PinnedPages, Simulated host sim, 1970-01-01 00:00:00Z",
            "1 cell = 16KiB (4 pages), 1 row = 512KiB; 22 of 256 pages d…",
            "0x10000000 │████······░·····················│",
            "0x10080000 │                ··▓··········▒··│",
            "· clean ░≤25% ▒≤50% ▓≤75% █>75% dirty, blank: no mapping");
        Assert.Equal(expected, string.Join("\n", lines));
        Assert.All(lines, l => Assert.True(l.Length <= 60, $"'{l}' is wider than 60"));
    }

    [Fact]
    public void TheTerminalViewUsesTheWholeWidthInAPowerOfTwoColumns()
    {
        var lines = DirtyHeatmap.RenderText(Known(), width: 80, maxRows: 16);   // room 67: 64 columns, 1 page a cell
        Assert.Equal("0x10000000 │████████████████························█·······················│", lines[3]);
        Assert.Equal(4 + 3 + 1, lines.Count);
    }

    [Fact]
    public void ATebibyteBitmapIsSummarisedInOnePassWithMemoryForTheCellsOnly()
    {
        ulong pages = (1UL << 40) / Page;
        var words = new ulong[pages / 64];
        words[12345] = ulong.MaxValue;
        var b = new DirtyBitmap(0, 1UL << 40, Page, words, DirtyScope.PinnedPages, HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch)
        {
            MappedRanges = new[] { new MappedRange(0, 1UL << 40) },
        };
        _ = b.DirtyPages;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var map = DirtyHeatmap.Compute(b, 256, 160);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(8192UL, map.PagesPerCell);
        Assert.True(allocated < 2_000_000, $"{allocated} bytes allocated for {map.Cells} cells");
        Assert.Equal(64f / 8192, map.Share(0, 12345 * 64 / 8192));
    }
}
