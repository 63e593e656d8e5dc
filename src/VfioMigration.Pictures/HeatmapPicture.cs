using System;
using System.Globalization;
using System.Numerics;
using SkiaSharp;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Pictures;

/// <summary>Where the grid of a heatmap picture lies, in pixels: what the tests and the drawing share.</summary>
public sealed record HeatmapLayout(int Width, int Height, int GridLeft, int GridTop, int CellWidth, int CellHeight, int Columns, int MaxRows)
{
    /// <summary>The pixel at the centre of a cell.</summary>
    public (int X, int Y) CellCentre(int row, int column) => (GridLeft + column * CellWidth + CellWidth / 2, GridTop + row * CellHeight + CellHeight / 2);
}

/// <summary>
/// The heatmap of a dirty bitmap as a PNG, drawn with SkiaSharp: the IOVA range in rows of cells, each
/// cell shaded by the share of its mapped pages that read dirty; gaps (no mapping) grey; mapping
/// boundaries as dark lines; the rows labelled with their first IOVA and the columns with their offset;
/// a title with range, page size, scope, host and time; a legend. The bitmap is read once
/// (<see cref="DirtyHeatmap.Compute"/>): the memory taken is the image and one number per cell, whatever
/// the bitmap's size.
/// </summary>
public static class HeatmapPicture
{
    public const int MinWidth = 480, MinHeight = 320;

    // The colours (the tests look for them).
    public static readonly SKColor Background = new(0xFF, 0xFF, 0xFF);
    public static readonly SKColor Clean = new(0xE3, 0xEE, 0xFA);
    public static readonly SKColor Gap = new(0xC4, 0xC4, 0xC4);
    public static readonly SKColor Boundary = new(0x12, 0x2B, 0x6E);
    public static readonly SKColor Ink = new(0x20, 0x20, 0x20);
    private static readonly SKColor[] Ramp = { new(0xFF, 0xE8, 0x8C), new(0xFE, 0xB2, 0x4C), new(0xF0, 0x3B, 0x20), new(0x80, 0x00, 0x26) };

    private const int Left = 150, Top = 78, Right = 28, Bottom = 92, MinCell = 4;

    /// <summary>The colour of a dirty share in (0, 1]: pale yellow for a page in many, dark red for all.</summary>
    public static SKColor ShareColour(float share)
    {
        float t = Math.Clamp(share, 0, 1) * (Ramp.Length - 1);
        int i = Math.Min((int)t, Ramp.Length - 2);
        float f = t - i;
        var a = Ramp[i];
        var b = Ramp[i + 1];
        return new SKColor(Mix(a.Red, b.Red, f), Mix(a.Green, b.Green, f), Mix(a.Blue, b.Blue, f));
    }

    private static byte Mix(byte a, byte b, float f) => (byte)Math.Round(a + (b - a) * f);

    /// <summary>The grid's place in a picture of this size (columns a power of two, cells at least 4 pixels wide).</summary>
    public static HeatmapLayout Layout(int width, int height)
    {
        int gridWidth = width - Left - Right, gridHeight = height - Top - Bottom;
        int columns = Math.Clamp(1 << BitOperations.Log2((uint)Math.Max(1, gridWidth / MinCell)), 8, 256);
        int cellWidth = Math.Max(1, gridWidth / columns);
        int maxRows = Math.Max(1, gridHeight / cellWidth);
        return new HeatmapLayout(width, height, Left, Top, cellWidth, cellWidth, columns, maxRows);
    }

    /// <summary>The layout once the heatmap is known: rows taller than wide when they are few, at most four cells' width.</summary>
    public static HeatmapLayout Fit(HeatmapLayout layout, DirtyHeatmap map)
    {
        int gridHeight = layout.Height - Top - Bottom;
        int cellHeight = Math.Clamp(gridHeight / Math.Max(1, map.Rows), 1, layout.CellWidth * 4);
        return layout with { CellHeight = cellHeight };
    }

    /// <summary>Renders the heatmap of <paramref name="bitmap"/> as PNG bytes.</summary>
    public static byte[] RenderPng(DirtyBitmap bitmap, int width, int height, string? caption = null) => Render(bitmap, width, height, caption).Png;

    /// <summary>Renders, and says where the grid went (for the tests).</summary>
    public static (byte[] Png, HeatmapLayout Layout, DirtyHeatmap Map) Render(DirtyBitmap bitmap, int width, int height, string? caption = null)
    {
        if (width < MinWidth || height < MinHeight)
            throw new ArgumentOutOfRangeException(nameof(width), $"a heatmap needs at least {MinWidth}×{MinHeight} pixels; {width}×{height} was asked.");
        if (bitmap.Pages == 0) throw new VfioRuleException(ErrorIds.NothingToDraw, "the bitmap covers no page: there is nothing to draw.");
        PictureRuntime.EnsureLoaded();
        var layout = Layout(width, height);
        var map = DirtyHeatmap.Compute(bitmap, layout.Columns, layout.MaxRows);
        layout = Fit(layout, map);

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"Skia could not make a {width}×{height} surface");
        var canvas = surface.Canvas;
        canvas.Clear(Background);
        DrawCells(canvas, map, layout);
        DrawBoundaries(canvas, map, layout);
        DrawAxes(canvas, map, layout);
        DrawTitle(canvas, map, layout, caption);
        DrawLegend(canvas, map, layout);
        canvas.Flush();
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return (data.ToArray(), layout, map);
    }

    private static void DrawCells(SKCanvas canvas, DirtyHeatmap map, HeatmapLayout l)
    {
        using var paint = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Fill };
        for (int r = 0; r < map.Rows; r++)
        {
            int y = l.GridTop + r * l.CellHeight;
            // Runs of cells of one colour are one rectangle: a row of clean cells is one call.
            int c = 0;
            while (c < map.Columns)
            {
                var colour = CellColour(map, r, c);
                int end = c + 1;
                while (end < map.Columns && CellColour(map, r, end) == colour) end++;
                paint.Color = colour;
                canvas.DrawRect(l.GridLeft + c * l.CellWidth, y, (end - c) * l.CellWidth, l.CellHeight, paint);
                c = end;
            }
        }
        using var frame = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Stroke, Color = new SKColor(0x70, 0x70, 0x70), StrokeWidth = 1 };
        canvas.DrawRect(l.GridLeft - 1, l.GridTop - 1, map.Columns * l.CellWidth + 1, map.Rows * l.CellHeight + 1, frame);
    }

    /// <summary>The colour a cell is drawn in.</summary>
    public static SKColor CellColour(DirtyHeatmap map, int row, int column)
    {
        if (map.IsOutside(row, column)) return Background;
        if (map.IsGap(row, column)) return Gap;
        float s = map.Share(row, column);
        return s <= 0 ? Clean : ShareColour(s);
    }

    private static void DrawBoundaries(SKCanvas canvas, DirtyHeatmap map, HeatmapLayout l)
    {
        if (!map.MappingsKnown) return;
        using var paint = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Fill, Color = Boundary };
        ulong start = map.Iova.Value, end = map.Iova.Value + map.Size;
        foreach (var m in map.Mappings)
        {
            if (m.Iova > start) Mark(m.Iova);
            if (m.End < end) Mark(m.End);
        }

        void Mark(ulong iova)
        {
            double cell = (double)((iova - start) / map.PageSize) / map.PagesPerCell;
            int row = (int)(cell / map.Columns);
            double column = cell - (double)row * map.Columns;
            if (row >= map.Rows) return;
            float x = (float)(l.GridLeft + column * l.CellWidth);
            float y = l.GridTop + row * l.CellHeight;
            canvas.DrawRect(x - 1, y, 2, l.CellHeight, paint);
            // A tick outside the grid, on the right, so that a boundary in a short row is found at a glance.
            float right = l.GridLeft + map.Columns * l.CellWidth + 3;
            canvas.DrawRect(right, y + l.CellHeight / 2f - 1, 8, 2, paint);
        }
    }

    private static SKFont Font(float size, bool bold = false) => new(PictureFonts.Get(bold), size);

    private static void DrawAxes(SKCanvas canvas, DirtyHeatmap map, HeatmapLayout l)
    {
        using var font = Font(12);
        using var small = Font(11);
        using var ink = new SKPaint { IsAntialias = true, Color = Ink };
        using var tick = new SKPaint { IsAntialias = false, Color = new SKColor(0x70, 0x70, 0x70), Style = SKPaintStyle.Fill };
        int digits = DirtyHeatmap.LabelDigits(map.Iova.Value, map.Size);
        // Row labels: every k-th row, k a power of two, so that labels are at least 16 pixels apart.
        int every = 1;
        while (every * l.CellHeight < 16) every *= 2;
        for (int r = 0; r < map.Rows; r += every)
        {
            float y = l.GridTop + r * l.CellHeight;
            canvas.DrawRect(l.GridLeft - 6, y, 5, 1, tick);
            string label = "0x" + map.RowIova(r).ToString("x" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            canvas.DrawText(label, l.GridLeft - 9, y + 4.5f, SKTextAlign.Right, font, ink);
        }
        canvas.DrawText("IOVA (row start)", l.GridLeft - 9, l.GridTop - 8, SKTextAlign.Right, small, ink);
        // Column labels: the offset within a row at each quarter.
        for (int q = 0; q < 4; q++)
        {
            int c = map.Columns * q / 4;
            float x = l.GridLeft + c * l.CellWidth;
            canvas.DrawRect(x, l.GridTop - 6, 1, 5, tick);
            canvas.DrawText("+0x" + ((ulong)c * map.BytesPerCell).ToString("x", CultureInfo.InvariantCulture), x, l.GridTop - 9, SKTextAlign.Left, small, ink);
        }
    }

    private static void DrawTitle(SKCanvas canvas, DirtyHeatmap map, HeatmapLayout l, string? caption)
    {
        using var bold = Font(16, bold: true);
        using var font = Font(12.5f);
        using var ink = new SKPaint { IsAntialias = true, Color = Ink };
        string title = caption ?? $"Dirty pages {map.Iova}–0x{map.Iova.Value + map.Size:x} ({Readable.Bytes(map.Size)})";
        canvas.DrawText(Clip(title, bold, l.Width - 24), 12, 24, SKTextAlign.Left, bold, ink);
        string line = $"{Readable.Bytes(map.PageSize)} pages · scope {map.Scope} · {map.HostKind} host {map.Host} · read " +
                      $"{map.Timestamp.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC";
        canvas.DrawText(Clip(line, font, l.Width - 24), 12, 44, SKTextAlign.Left, font, ink);
    }

    private static void DrawLegend(SKCanvas canvas, DirtyHeatmap map, HeatmapLayout l)
    {
        using var font = Font(12);
        using var ink = new SKPaint { IsAntialias = true, Color = Ink };
        using var fill = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Fill };
        using var frame = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Stroke, Color = new SKColor(0x70, 0x70, 0x70) };
        float y = l.Height - Bottom + 24;
        y = Math.Max(y, l.GridTop + map.Rows * l.CellHeight + 16);
        float x = 12;
        double percent = map.Pages == 0 ? 0 : 100.0 * map.DirtyPages / map.Pages;
        canvas.DrawText($"{map.DirtyPages} of {map.Pages} pages dirty ({percent.ToString("0.###", CultureInfo.InvariantCulture)} %) · 1 cell = {Readable.Bytes(map.BytesPerCell)} " +
                        $"({map.PagesPerCell} page{(map.PagesPerCell == 1 ? "" : "s")}) · 1 row = {Readable.Bytes(map.BytesPerRow)}", x, y, SKTextAlign.Left, font, ink);
        y += 14;
        // Swatches: clean, gap, boundary; then the dirty-share ramp.
        Swatch(Clean, "clean");
        if (map.MappingsKnown) Swatch(Gap, "no mapping (gap)");
        if (map.MappingsKnown)
        {
            fill.Color = Boundary;
            canvas.DrawRect(x + 6, y, 2, 14, fill);
            canvas.DrawText("mapping boundary", x + 16, y + 11.5f, SKTextAlign.Left, font, ink);
            x += 16 + font.MeasureText("mapping boundary") + 22;
        }
        canvas.DrawText("dirty share of a cell:", x, y + 11.5f, SKTextAlign.Left, font, ink);
        x += font.MeasureText("dirty share of a cell:") + 8;
        const int rampWidth = 200;
        for (int i = 0; i < rampWidth; i++)
        {
            fill.Color = ShareColour((i + 1) / (float)rampWidth);
            canvas.DrawRect(x + i, y, 1, 14, fill);
        }
        canvas.DrawRect(x, y, rampWidth, 14, frame);
        canvas.DrawText("1 page", x, y + 28, SKTextAlign.Left, font, ink);
        canvas.DrawText("50 %", x + rampWidth / 2f, y + 28, SKTextAlign.Center, font, ink);
        canvas.DrawText("100 %", x + rampWidth, y + 28, SKTextAlign.Right, font, ink);

        void Swatch(SKColor colour, string text)
        {
            fill.Color = colour;
            canvas.DrawRect(x, y, 14, 14, fill);
            canvas.DrawRect(x, y, 14, 14, frame);
            canvas.DrawText(text, x + 20, y + 11.5f, SKTextAlign.Left, font, ink);
            x += 20 + font.MeasureText(text) + 22;
        }
    }

    private static string Clip(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width) text = text[..^1];
        return text + "…";
    }
}
