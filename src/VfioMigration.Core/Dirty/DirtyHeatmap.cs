using System;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Text;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Dirty;

/// <summary>
/// A dirty bitmap seen as a grid: the IOVA range laid out in rows of <see cref="Columns"/> cells, each cell
/// a block of <see cref="PagesPerCell"/> pages (a power of two) holding the share of its mapped pages that
/// read dirty. Cells with no mapped page are gaps. Computed in one pass over the bitmap's words, with no
/// object per page: the memory it takes is one number per cell, whatever the bitmap's size. The pictures
/// (Export-DirtyHeatmap) and the terminal view (Show-DirtyHeatmap) both draw from it.
/// </summary>
public sealed class DirtyHeatmap
{
    private readonly float[] _shares;   // per cell: dirty / mapped pages, NaN for a gap (no mapped page)

    private DirtyHeatmap(DirtyBitmap bitmap, int columns, int rows, ulong pagesPerCell, float[] shares, MappedRange[] mappings, bool mappingsKnown)
    {
        Iova = bitmap.Iova;
        Size = bitmap.Size;
        PageSize = bitmap.PageSize;
        Pages = bitmap.Pages;
        DirtyPages = bitmap.DirtyPages;
        Scope = bitmap.Scope;
        HostKind = bitmap.HostKind;
        Host = bitmap.Host;
        Timestamp = bitmap.Timestamp;
        Columns = columns;
        Rows = rows;
        PagesPerCell = pagesPerCell;
        _shares = shares;
        Mappings = mappings;
        MappingsKnown = mappingsKnown;
    }

    public Iova Iova { get; }

    public ulong Size { get; }

    public ulong PageSize { get; }

    public ulong Pages { get; }

    public ulong DirtyPages { get; }

    public DirtyScope Scope { get; }

    public HostKind HostKind { get; }

    public string Host { get; }

    public DateTimeOffset Timestamp { get; }

    /// <summary>Cells per row.</summary>
    public int Columns { get; }

    /// <summary>Rows of cells (the last may be partly beyond the range).</summary>
    public int Rows { get; }

    /// <summary>Pages per cell, a power of two.</summary>
    public ulong PagesPerCell { get; }

    /// <summary>Cells that hold pages of the range: Rows × Columns less those past its end.</summary>
    public int Cells => (int)((Pages + PagesPerCell - 1) / PagesPerCell);

    /// <summary>Bytes per cell.</summary>
    public ulong BytesPerCell => PagesPerCell * PageSize;

    /// <summary>Bytes per row.</summary>
    public ulong BytesPerRow => BytesPerCell * (ulong)Columns;

    /// <summary>The mappings inside the range, clipped to it, in IOVA order (the whole range when they are not known).</summary>
    public IReadOnlyList<MappedRange> Mappings { get; }

    /// <summary>False when the bitmap did not say which ranges were mapped (a device's log, an older file): then no cell is a gap.</summary>
    public bool MappingsKnown { get; }

    /// <summary>The IOVA where row <paramref name="row"/> starts.</summary>
    public ulong RowIova(int row) => Iova.Value + (ulong)row * BytesPerRow;

    /// <summary>True when the cell lies past the end of the range.</summary>
    public bool IsOutside(int row, int column) => (long)row * Columns + column >= Cells;

    /// <summary>True when no page of the cell was mapped.</summary>
    public bool IsGap(int row, int column) => !IsOutside(row, column) && float.IsNaN(_shares[row * Columns + column]);

    /// <summary>Share of the cell's mapped pages that read dirty, 0–1; 0 for a gap or a cell past the end.</summary>
    public float Share(int row, int column)
    {
        if (IsOutside(row, column)) return 0;
        float s = _shares[row * Columns + column];
        return float.IsNaN(s) ? 0 : s;
    }

    /// <summary>
    /// The heatmap of a bitmap in <paramref name="columns"/> cells per row and at most
    /// <paramref name="maxRows"/> rows: the pages per cell are the smallest power of two that fits the range.
    /// </summary>
    public static DirtyHeatmap Compute(DirtyBitmap bitmap, int columns, int maxRows)
    {
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), "A heatmap needs at least one column.");
        if (maxRows < 1) throw new ArgumentOutOfRangeException(nameof(maxRows), "A heatmap needs at least one row.");
        ulong pages = bitmap.Pages;
        ulong capacity = (ulong)columns * (ulong)maxRows;
        ulong perCell = Math.Max(1, (pages + capacity - 1) / capacity);
        perCell = BitOperations.IsPow2(perCell) ? perCell : 1UL << (64 - BitOperations.LeadingZeroCount(perCell));
        ulong cellCount = (pages + perCell - 1) / perCell;
        int rows = (int)Math.Max(1, (cellCount + (ulong)columns - 1) / (ulong)columns);
        var dirty = new ulong[Math.Max(1, (long)cellCount)];
        CountDirty(bitmap.GetWords(), pages, perCell, dirty);

        // Mapped pages per cell, from the mapping list (arithmetic per mapping, nothing per page).
        ulong start = bitmap.Iova.Value, end = start + bitmap.Size;
        var clipped = new List<MappedRange>();
        bool known = bitmap.MappedRanges is not null;
        if (known)
        {
            foreach (var m in bitmap.MappedRanges!)
            {
                ulong a = Math.Max(m.Iova, start), b = Math.Min(m.End, end);
                if (a < b) clipped.Add(new MappedRange(a, b - a));
            }
        }
        else if (bitmap.Size > 0)
        {
            clipped.Add(new MappedRange(start, bitmap.Size));
        }
        var mapped = new ulong[dirty.Length];
        foreach (var m in clipped)
        {
            ulong p0 = (m.Iova - start) / bitmap.PageSize, p1 = (m.End - start + bitmap.PageSize - 1) / bitmap.PageSize;
            for (ulong p = p0; p < p1;)
            {
                ulong cell = p / perCell;
                ulong next = Math.Min(p1, (cell + 1) * perCell);
                mapped[cell] += next - p;
                p = next;
            }
        }

        var shares = new float[(long)rows * columns];
        for (long i = 0; i < shares.Length; i++)
        {
            if ((ulong)i >= cellCount) { shares[i] = 0; continue; }
            // A cell without a mapped page is a gap whatever its bits say (the kernel sets none there; a bitmap
            // from a file could); in a cell partly mapped, dirty bits outside the mapping count, up to all.
            shares[i] = mapped[i] == 0 ? float.NaN : Math.Min(1f, (float)dirty[i] / mapped[i]);
        }
        return new DirtyHeatmap(bitmap, columns, rows, perCell, shares, clipped.ToArray(), known);
    }

    /// <summary>Adds the dirty pages of each block of <paramref name="perCell"/> pages (a power of two) into <paramref name="dirty"/>, one pass over the words.</summary>
    internal static void CountDirty(ReadOnlySpan<ulong> words, ulong pages, ulong perCell, ulong[] dirty)
    {
        int wordCount = (int)Math.Min((ulong)words.Length, (pages + 63) / 64);
        if (perCell >= 64)
        {
            int shift = BitOperations.TrailingZeroCount(perCell) - 6;   // words per cell = 2^shift
            for (int w = 0; w < wordCount; w++)
            {
                ulong word = words[w];
                if (word == 0) continue;
                if (w == wordCount - 1) word &= LastWordMask(pages);
                dirty[w >> shift] += (ulong)BitOperations.PopCount(word);
            }
            return;
        }
        int bits = (int)perCell, chunks = 64 / bits;
        ulong mask = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        for (int w = 0; w < wordCount; w++)
        {
            ulong word = words[w];
            if (word == 0) continue;
            if (w == wordCount - 1) word &= LastWordMask(pages);
            long cell = (long)w * chunks;
            for (int c = 0; c < chunks && word != 0; c++, word >>= bits)
            {
                ulong part = word & mask;
                if (part != 0) dirty[cell + c] += (ulong)BitOperations.PopCount(part);
            }
        }
    }

    private static ulong LastWordMask(ulong pages) => pages % 64 == 0 ? ulong.MaxValue : (1UL << (int)(pages % 64)) - 1;

    // ---- The terminal view ----------------------------------------------------------------------------

    /// <summary>The characters of the terminal view: a gap, a clean cell, then dirty shares up to 25, 50, 75 and 100 %.</summary>
    public const string TextShades = " ·░▒▓█";

    /// <summary>The character for a cell.</summary>
    public char TextCell(int row, int column)
    {
        if (IsOutside(row, column) || IsGap(row, column)) return TextShades[0];
        float s = Share(row, column);
        if (s <= 0) return TextShades[1];
        if (s <= 0.25f) return TextShades[2];
        if (s <= 0.5f) return TextShades[3];
        if (s <= 0.75f) return TextShades[4];
        return TextShades[5];
    }

    /// <summary>Hex digits of the row labels: enough for the highest row's IOVA, at least 8.</summary>
    public static int LabelDigits(ulong iova, ulong size)
    {
        ulong last = size == 0 ? iova : iova + size - 1;
        return Math.Max(8, (64 - BitOperations.LeadingZeroCount(last | 1) + 3) / 4);
    }

    /// <summary>Characters each line spends on the row label and the frame ("0x… │" and "│").</summary>
    public static int TextOverhead(ulong iova, ulong size) => LabelDigits(iova, size) + 2 + 2 + 1;

    /// <summary>
    /// The terminal view of a bitmap in lines no wider than <paramref name="width"/> characters and at most
    /// <paramref name="maxRows"/> rows of cells: a title, the rows (each labelled with its first IOVA) and
    /// a legend. Columns are a power of two so that rows start on round addresses.
    /// </summary>
    public static IReadOnlyList<string> RenderText(DirtyBitmap bitmap, int width, int maxRows)
    {
        int overhead = TextOverhead(bitmap.Iova.Value, bitmap.Size);
        int room = Math.Max(8, width - overhead);
        int columns = 1 << (31 - BitOperations.LeadingZeroCount((uint)room));
        var map = Compute(bitmap, columns, maxRows);
        return map.ToText(width);
    }

    /// <summary>The lines of the terminal view (see <see cref="RenderText"/>).</summary>
    public IReadOnlyList<string> ToText(int width)
    {
        var lines = new List<string>
        {
            Fit($"Dirty pages {Iova}–0x{Iova.Value + Size:x} ({Readable.Bytes(Size)}), {Readable.Bytes(PageSize)} pages", width),
            Fit($"{Scope}, {HostKind} host {Host}, {Timestamp.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z", width),
            Fit($"1 cell = {Readable.Bytes(BytesPerCell)} ({PagesPerCell} page{(PagesPerCell == 1 ? "" : "s")}), 1 row = {Readable.Bytes(BytesPerRow)}; " +
                $"{DirtyPages} of {Pages} pages dirty ({Percent(DirtyPages, Pages)})", width),
        };
        int digits = LabelDigits(Iova.Value, Size);
        var sb = new StringBuilder(digits + Columns + 8);
        for (int r = 0; r < Rows; r++)
        {
            sb.Clear();
            sb.Append("0x").Append(RowIova(r).ToString("x" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)).Append(" │");
            for (int c = 0; c < Columns; c++) sb.Append(TextCell(r, c));
            sb.Append('│');
            lines.Add(sb.ToString());
        }
        lines.Add(Fit($"{TextShades[1]} clean {TextShades[2]}≤25% {TextShades[3]}≤50% {TextShades[4]}≤75% {TextShades[5]}>75% dirty" +
            (MappingsKnown ? ", blank: no mapping" : ""), width));
        return lines;
    }

    private static string Percent(ulong part, ulong whole) =>
        whole == 0 ? "0%" : (100.0 * part / whole).ToString(part == 0 || part == whole ? "0" : "0.###", CultureInfo.InvariantCulture) + "%";

    private static string Fit(string text, int width) => width > 1 && text.Length > width ? text[..(width - 1)] + "…" : text;
}
