using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using SkiaSharp;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Pictures;
using Xunit;

namespace VfioMigration.Core.Tests.Pictures;

/// <summary>The pictures, looked at: decoded from the PNG the cmdlets write, pixel by pixel.</summary>
public class PictureTests
{
    private const ulong Page = 4096;

    private static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new InvalidOperationException("the PNG does not decode");

    /// <summary>With VFIOMIGRATION_PICTURES_OUT set to a folder, the tests leave their pictures there, to be looked at.</summary>
    private static void Keep(string name, byte[] png)
    {
        if (Environment.GetEnvironmentVariable("VFIOMIGRATION_PICTURES_OUT") is { Length: > 0 } folder)
            System.IO.File.WriteAllBytes(System.IO.Path.Combine(folder, name), png);
    }

    /// <summary>4096 pages (16 MiB) at 0x40000000, one mapping; pages 1024–1151 dirty: row 8 of 128 cells of one page.</summary>
    private static DirtyBitmap OneDirtyBlock(IReadOnlyList<MappedRange>? mappings = null)
    {
        var words = new ulong[64];
        for (int w = 16; w < 18; w++) words[w] = ulong.MaxValue;
        return new DirtyBitmap(0x40000000, 4096 * Page, Page, words, DirtyScope.PinnedPages, HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch)
        {
            MappedRanges = mappings ?? new[] { new MappedRange(0x40000000, 4096 * Page) },
        };
    }

    [Fact]
    public void AHeatmapDecodesAtTheSizeAsked()
    {
        using var image = Decode(HeatmapPicture.RenderPng(OneDirtyBlock(), 1000, 700));
        Assert.Equal(1000, image.Width);
        Assert.Equal(700, image.Height);
    }

    [Fact]
    public void OneDirtyBlockIsDarkRedExactlyWhereItLiesAndTheRestIsClean()
    {
        var (png, layout, map) = HeatmapPicture.Render(OneDirtyBlock(), 800, 600);
        using var image = Decode(png);
        Assert.Equal(128, map.Columns);
        Assert.Equal(1UL, map.PagesPerCell);
        Assert.Equal(32, map.Rows);
        var dirty = HeatmapPicture.ShareColour(1);
        Assert.Equal(new SKColor(0x80, 0x00, 0x26), dirty);

        // Every pixel of the grid in the dark red: their bounding box is row 8, all 128 cells.
        int gridRight = layout.GridLeft + 128 * layout.CellWidth, gridBottom = layout.GridTop + 32 * layout.CellHeight;
        int minX = int.MaxValue, maxX = -1, minY = int.MaxValue, maxY = -1;
        for (int y = layout.GridTop; y < gridBottom; y++)
            for (int x = layout.GridLeft; x < gridRight; x++)
                if (image.GetPixel(x, y) == dirty) (minX, maxX, minY, maxY) = (Math.Min(minX, x), Math.Max(maxX, x), Math.Min(minY, y), Math.Max(maxY, y));
        Assert.Equal((layout.GridLeft, gridRight - 1), (minX, maxX));
        Assert.Equal((layout.GridTop + 8 * layout.CellHeight, layout.GridTop + 9 * layout.CellHeight - 1), (minY, maxY));

        // Around it, the clean colour.
        foreach (var (r, c) in new[] { (7, 0), (7, 127), (9, 64), (0, 0), (31, 127) })
        {
            var (x, y) = layout.CellCentre(r, c);
            Assert.Equal(HeatmapPicture.Clean, image.GetPixel(x, y));
        }
    }

    [Fact]
    public void AGapBetweenMappingsIsGreyAndItsBoundariesAreMarked()
    {
        // Two mappings with a hole: pages 0–2047 and 3072–4095; pages 2048–3071 (rows 16–23) are a gap.
        var mappings = new[] { new MappedRange(0x40000000, 2048 * Page), new MappedRange(0x40000000 + 3072 * Page, 1024 * Page) };
        var (png, layout, _) = HeatmapPicture.Render(OneDirtyBlock(mappings), 800, 600);
        Keep("heatmap-gap.png", png);
        using var image = Decode(png);
        var (gx, gy) = layout.CellCentre(20, 40);
        Assert.Equal(HeatmapPicture.Gap, image.GetPixel(gx, gy));
        var (cx, cy) = layout.CellCentre(24, 40);
        Assert.Equal(HeatmapPicture.Clean, image.GetPixel(cx, cy));
        // The boundary at the start of row 16 (end of the first mapping) and of row 24 (start of the second).
        foreach (int row in new[] { 16, 24 })
        {
            int y = layout.GridTop + row * layout.CellHeight + layout.CellHeight / 2;
            Assert.Equal(HeatmapPicture.Boundary, image.GetPixel(layout.GridLeft, y));
        }
    }

    [Fact]
    public void ATebibyteHeatmapRendersInSecondsAllocatingAFewImagesWorth()
    {
        ulong pages = (1UL << 40) / Page;
        var words = new ulong[pages / 64];
        for (long w = 0; w < words.Length; w += 4099) words[w] = 0xF0F0F0F0F0F0F0F0;
        var bitmap = new DirtyBitmap(0, 1UL << 40, Page, words, DirtyScope.PinnedPages, HostKind.Simulated, "sim", DateTimeOffset.UnixEpoch)
        {
            MappedRanges = new[] { new MappedRange(0, 1UL << 39), new MappedRange(3UL << 38, 1UL << 38) },
        };
        _ = bitmap.DirtyPages;
        HeatmapPicture.RenderPng(OneDirtyBlock(), 1200, 800);   // the first render loads Skia and the fonts
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        byte[] png = HeatmapPicture.RenderPng(bitmap, 1200, 800);
        clock.Stop();
        Keep("heatmap-1tib.png", png);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long imageBytes = 1200L * 800 * 4;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{clock.Elapsed.TotalMilliseconds} ms");
        Assert.True(allocated < 2 * imageBytes, $"{allocated} managed bytes allocated, the image is {imageBytes}");
        using var image = Decode(png);
        Assert.Equal(1200, image.Width);
    }

    private static MigrationReport Report(int rounds, MigrationStatus status = MigrationStatus.Completed)
    {
        var details = Enumerable.Range(1, rounds).Select(i => new MigrationIteration
        {
            Iteration = i,
            DeviceBytes = (ulong)(rounds + 4 - i) << 20,
            GuestDirtyPages = 256,
            GuestDirtyBytes = 1UL << 20,
            RemainingBytes = (ulong)(rounds - i + 1) << 20,
            Duration = TimeSpan.FromMilliseconds(50),
            DirtyRateMiBps = 10,
            DirtyPagesPerSecond = 2560,
        }).ToArray();
        var outcome = new DeviceOutcome { Device = "0000:3b:00.1", Role = "source", State = VfioMigrationState.Running, Action = "left running" };
        return new MigrationReport
        {
            Source = "0000:3b:00.1",
            Destination = "0000:3b:00.2",
            Status = status,
            Protocol = MigrationProtocol.V2,
            Iterations = rounds,
            PrecopyBytes = (ulong)details.Sum(d => (long)d.DeviceBytes),
            StopCopyBytes = 3UL << 20,
            GuestBytes = (ulong)rounds << 20,
            RemainingBytes = 0,
            Downtime = TimeSpan.FromMilliseconds(40),
            ExpectedDowntime = TimeSpan.FromMilliseconds(30),
            TotalTime = TimeSpan.FromMilliseconds(400),
            Bandwidth = 128UL << 20,
            DowntimeLimit = TimeSpan.FromMilliseconds(300),
            AllowedBytes = (ulong)(128 * 0.3 * (1 << 20)),
            IterationDetails = details,
            SourceState = VfioMigrationState.Stop,
            SourceOutcome = outcome,
            HostKind = HostKind.Simulated,
        };
    }

    /// <summary>Runs of pixels of one colour along a row of the image.</summary>
    private static int Runs(SKBitmap image, int y, int left, int right, SKColor colour)
    {
        int runs = 0;
        bool inRun = false;
        for (int x = left; x <= right; x++)
        {
            bool hit = Near(image.GetPixel(x, y), colour);
            if (hit && !inRun) runs++;
            inRun = hit;
        }
        return runs;
    }

    private static bool Near(SKColor a, SKColor b) => Math.Abs(a.Red - b.Red) <= 3 && Math.Abs(a.Green - b.Green) <= 3 && Math.Abs(a.Blue - b.Blue) <= 3;

    private static SKColor Sk(ScottPlot.Color c) => new(c.R, c.G, c.B);

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(9)]
    public void AMigrationChartHasOneBarPerRoundAndOneStopCopyBar(int rounds)
    {
        var chart = Charts.Migration(Report(rounds), 1000, 600);
        Keep($"migration-{rounds}.png", chart.Png);
        using var image = Decode(chart.Png);
        Assert.Equal((1000, 600), (image.Width, image.Height));
        int y = (int)chart.DataBottom - 3;   // just above the axis every bar is there
        Assert.Equal(rounds, Runs(image, y, (int)chart.DataLeft, (int)chart.DataRight, Sk(Charts.SentColour)));
        Assert.Equal(1, Runs(image, y, (int)chart.DataLeft, (int)chart.DataRight, Sk(Charts.StopCopyColour)));
    }

    [Fact]
    public void AMigrationThatRanNoRoundHasNothingToDraw()
    {
        var e = Assert.Throws<VfioRuleException>(() => Charts.Migration(Report(0, MigrationStatus.Failed), 800, 600));
        Assert.Equal(ErrorIds.NothingToDraw, e.RuleId);
    }

    [Fact]
    public void ADirtyRateChartDecodesAtTheSizeAskedAndDrawsItsLine()
    {
        var t = DateTimeOffset.UnixEpoch;
        var samples = Enumerable.Range(1, 5).Select(i => new DirtyRateSample
        {
            Iteration = i, ContainerId = 1, Timestamp = t.AddSeconds(i), Interval = TimeSpan.FromSeconds(1),
            Pages = 262144, DirtyPages = (ulong)(1000 * i), PageSize = Page, Scope = DirtyScope.PinnedPages,
        }).ToArray();
        var chart = Charts.DirtyRate(samples, 900, 500);
        Keep("dirty-rate.png", chart.Png);
        using var image = Decode(chart.Png);
        Assert.Equal((900, 500), (image.Width, image.Height));
        int seen = 0;
        for (int y = (int)chart.DataTop; y < (int)chart.DataBottom; y++)
            for (int x = (int)chart.DataLeft; x < (int)chart.DataRight; x++)
                if (Near(image.GetPixel(x, y), Sk(Charts.RateColour))) seen++;
        Assert.True(seen > 200, $"{seen} pixels of the rate line");
        Assert.Equal(ErrorIds.NothingToDraw, Assert.Throws<VfioRuleException>(() => Charts.DirtyRate(Array.Empty<DirtyRateSample>(), 900, 500)).RuleId);
    }
}
