using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ScottPlot;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Pictures;

/// <summary>A rendered chart and where its data area lies in the image (pixels), for the tests.</summary>
public sealed record ChartImage(byte[] Png, float DataLeft, float DataTop, float DataRight, float DataBottom);

/// <summary>The charts, drawn with ScottPlot: the dirty rate over time, and a migration's rounds.</summary>
public static class Charts
{
    public const int MinWidth = 400, MinHeight = 300;

    // The colours (the tests look for them).
    public static readonly Color SentColour = Color.FromHex("#3A6FB0");
    public static readonly Color StopCopyColour = Color.FromHex("#C0392B");
    public static readonly Color RemainingColour = Color.FromHex("#E67E22");
    public static readonly Color AllowedColour = Color.FromHex("#27AE60");
    public static readonly Color RateColour = Color.FromHex("#8E44AD");

    /// <summary>
    /// Dirty rate over time from Measure-DirtyRate samples: pages/s on the left axis and the same line read
    /// in MiB/s on the right (one line per container or device log).
    /// </summary>
    public static ChartImage DirtyRate(IReadOnlyList<DirtyRateSample> samples, int width, int height)
    {
        if (samples.Count == 0) throw new VfioRuleException(ErrorIds.NothingToDraw, "no dirty-rate samples: pipe the output of Measure-DirtyRate.");
        Check(width, height);
        Prepare();
        var plot = new Plot();
        var t0 = samples.Min(s => s.Timestamp - s.Interval);
        var groups = samples.GroupBy(s => s.Device is null ? $"container {s.ContainerId}" : $"device {s.Device}").ToArray();
        Color[] palette = { RateColour, SentColour, RemainingColour, StopCopyColour, AllowedColour };
        double top = 0;
        int g = 0;
        foreach (var group in groups)
        {
            var ordered = group.OrderBy(s => s.Timestamp).ToArray();
            double[] xs = ordered.Select(s => (s.Timestamp - t0).TotalSeconds).ToArray();
            double[] ys = ordered.Select(s => s.DirtyPagesPerSecond).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.Color = palette[g++ % palette.Length];
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LegendText = groups.Length == 1 ? "dirty pages/s" : $"{group.Key} (pages/s)";
            top = Math.Max(top, ys.Max());
        }
        top = top <= 0 ? 1 : top * 1.15;
        double right = samples.Max(s => (s.Timestamp - t0).TotalSeconds);
        plot.Axes.SetLimits(0, Math.Max(right, 1e-3) * 1.03, 0, top);
        plot.Axes.Left.Label.Text = "dirty pages per second";
        plot.Axes.Bottom.Label.Text = "seconds since the first interval began";
        // The right axis reads the same line in MiB/s: one page size, so a fixed factor.
        ulong pageSize = samples[0].PageSize;
        if (samples.All(s => s.PageSize == pageSize))
        {
            double factor = pageSize / 1048576.0;
            plot.Axes.Right.Label.Text = "dirty MiB per second";
            plot.Axes.SetLimitsY(0, top * factor, plot.Axes.Right);
            var ghost = plot.Add.Scatter(new[] { 0.0 }, new[] { 0.0 });
            ghost.Axes.YAxis = plot.Axes.Right;
            ghost.LineWidth = 0;
            ghost.MarkerSize = 0;
            plot.Axes.SetLimitsY(0, top * factor, plot.Axes.Right);
        }
        var first = samples[0];
        double meanPages = samples.Average(s => s.DirtyPagesPerSecond), meanMiB = samples.Average(s => s.DirtyRateMiBps);
        plot.Title($"Dirty rate: {samples.Count} interval{(samples.Count == 1 ? "" : "s")}, {first.Pages} pages of {Readable.Bytes(first.PageSize)} tracked, scope {first.Scope}");
        Note(plot, $"mean {meanPages.ToString("0.#", CultureInfo.InvariantCulture)} pages/s = {meanMiB.ToString("0.###", CultureInfo.InvariantCulture)} MiB/s", Alignment.UpperRight, Colors.Black);
        plot.ShowLegend(Alignment.UpperLeft);
        return Render(plot, width, height);
    }

    /// <summary>
    /// A migration from its Start-VfioMigration report: per pre-copy round the bytes sent (bars) and what
    /// remained after it (line); the switchover; the stop-copy; what may remain at switchover (bandwidth ×
    /// downtime limit); and the measured downtime against the limit.
    /// </summary>
    public static ChartImage Migration(MigrationReport report, int width, int height)
    {
        if (report.IterationDetails.Count == 0)
            throw new VfioRuleException(ErrorIds.NothingToDraw, $"the migration of {report.Source} ran no pre-copy round ({report.Status}{(report.FailedPhase is null ? "" : ", stopped in " + report.FailedPhase)}): there is nothing to chart.");
        Check(width, height);
        Prepare();
        var rounds = report.IterationDetails;
        int n = rounds.Count;
        bool stopped = report.Status == MigrationStatus.Completed || report.StopCopyBytes > 0;
        // A migration that never stopped the source: the stop-copy the device announced is what kept it from switching over.
        ulong? announced = stopped ? null : report.StopCopySize;
        ulong data = Math.Max(Math.Max(report.StopCopyBytes, announced ?? 0), rounds.Max(r => Math.Max(r.RemainingBytes, r.DeviceBytes + r.GuestDirtyBytes)));
        // The allowance is drawn to scale when it is near the data; far above it, it would flatten the bars to
        // nothing, so the legend gives its value instead.
        bool allowedOnScale = report.AllowedBytes <= Math.Max(data, 1) * 4;
        ulong most = allowedOnScale ? Math.Max(data, report.AllowedBytes) : data;
        var (unit, scale) = Unit(most);
        var plot = new Plot();

        var bars = new List<Bar>();
        for (int i = 0; i < n; i++)
            bars.Add(new Bar { Position = i + 1, Value = (rounds[i].DeviceBytes + rounds[i].GuestDirtyBytes) / scale, FillColor = SentColour, LineWidth = 0, Size = 0.6 });
        var sent = plot.Add.Bars(bars);
        sent.LegendText = "sent in the round";
        if (stopped)
        {
            var stop = plot.Add.Bars(new[] { new Bar { Position = n + 1, Value = report.StopCopyBytes / scale, FillColor = StopCopyColour, LineWidth = 0, Size = 0.6 } });
            stop.LegendText = "stop-copy (source stopped)";
        }
        else if (announced is { } size)
        {
            var pending = plot.Add.Bars(new[] { new Bar { Position = n + 1, Value = size / scale, FillColor = StopCopyColour.WithAlpha(0.35), LineColor = StopCopyColour, LineWidth = 1.5f, Size = 0.6 } });
            pending.LegendText = "stop-copy size the device announced (not run)";
        }
        double[] xs = Enumerable.Range(1, n).Select(i => (double)i).ToArray();
        double[] remaining = rounds.Select(r => r.RemainingBytes / scale).ToArray();
        var left = plot.Add.Scatter(xs, remaining);
        left.Color = RemainingColour;
        left.LineWidth = 2;
        left.MarkerSize = 8;
        left.LegendText = "remaining after the round";

        var allowed = plot.Add.HorizontalLine(report.AllowedBytes / scale);
        allowed.Color = AllowedColour;
        allowed.LineWidth = 2;
        allowed.LinePattern = LinePattern.Dashed;
        allowed.LegendText = $"may remain at switchover: {Readable.Bytes(report.AllowedBytes)} ({Readable.Bytes(report.Bandwidth)}/s × {Ms(report.DowntimeLimit)} limit)" +
                             (allowedOnScale ? "" : ", far above this scale");
        if (stopped)
        {
            var switchover = plot.Add.VerticalLine(n + 0.5);
            switchover.Color = Colors.Black;
            switchover.LineWidth = 1.5f;
            switchover.LinePattern = LinePattern.Dotted;
            switchover.LegendText = "switchover";
        }

        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 1; i <= n; i++) ticks.AddMajor(i, n <= 12 || i % Math.Max(1, n / 10) == 0 ? i.ToString(CultureInfo.InvariantCulture) : "");
        if (stopped) ticks.AddMajor(n + 1, "stop-copy");
        else if (announced is not null) ticks.AddMajor(n + 1, "stop-copy (not run)");
        bool extra = stopped || announced is not null;
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.Label.Text = $"pre-copy round, {Short(report.Source)} → {Short(report.Destination)}";
        plot.Axes.Left.Label.Text = unit;
        double topValue = most / scale;
        // A third of the height above the tallest mark: room for the legend and the note, which would otherwise hide bars.
        plot.Axes.SetLimits(0.3, n + (extra ? 1.7 : 0.7), 0, topValue <= 0 ? 1 : topValue * 1.5);

        bool over = report.Downtime > report.DowntimeLimit;
        string downtime = report.Status == MigrationStatus.Completed
            ? $"downtime {(Ms(report.Downtime) == Ms(report.DowntimeLimit) ? Precise(report.Downtime) : Ms(report.Downtime))} of {Ms(report.DowntimeLimit)} limit ({(over ? "exceeded" : "within")})"
            : $"not completed: {report.ErrorId ?? report.Status.ToString()}{(report.FailedPhase is null ? "" : " in " + report.FailedPhase)}";
        Note(plot, downtime, Alignment.UpperRight, report.Status == MigrationStatus.Completed && !over ? Color.FromHex("#1E7B3A") : StopCopyColour);
        plot.Title($"Migration {report.Status}: {n} pre-copy round{(n == 1 ? "" : "s")}, {Readable.Bytes(report.TransferredBytes)} sent in {Ms(report.TotalTime)}");
        plot.ShowLegend(Alignment.UpperLeft);
        return Render(plot, width, height);
    }

    private static void Note(Plot plot, string text, Alignment where, Color colour)
    {
        var note = plot.Add.Annotation(text, where);
        note.LabelFontColor = colour;
        note.LabelFontSize = 14;
        note.LabelBackgroundColor = Colors.White;
        note.LabelBorderColor = colour;
        note.LabelShadowColor = Colors.Transparent;
    }

    private static void Check(int width, int height)
    {
        if (width < MinWidth || height < MinHeight)
            throw new ArgumentOutOfRangeException(nameof(width), $"a chart needs at least {MinWidth}×{MinHeight} pixels; {width}×{height} was asked.");
    }

    private static void Prepare()
    {
        PictureRuntime.EnsureLoaded();
        PictureFonts.RegisterWithScottPlot();
    }

    private static ChartImage Render(Plot plot, int width, int height)
    {
        plot.Font.Set(PictureFonts.Family);
        var image = plot.GetImage(width, height);
        using (image)
        {
            byte[] png = image.GetImageBytes(ImageFormat.Png);
            var rect = plot.RenderManager.LastRender.DataRect;
            return new ChartImage(png, rect.Left, rect.Top, rect.Right, rect.Bottom);
        }
    }

    private static (string Unit, double Scale) Unit(ulong most) => most switch
    {
        >= 1UL << 30 => ("GiB", 1UL << 30),
        >= 1UL << 20 => ("MiB", 1UL << 20),
        >= 1UL << 10 => ("KiB", 1UL << 10),
        _ => ("bytes", 1),
    };

    /// <summary>A device name or path short enough for an axis label.</summary>
    private static string Short(string name) => name.Length <= 24 ? name : name[..10] + "…" + name[^10..];

    // When rounding makes the downtime read like the limit ("300 ms of 300 ms, exceeded"), the fraction shows.
    private static string Precise(TimeSpan t) => t.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture) + " ms";

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString(t.TotalMilliseconds >= 100 ? "0" : "0.#", CultureInfo.InvariantCulture) + " ms";
}
