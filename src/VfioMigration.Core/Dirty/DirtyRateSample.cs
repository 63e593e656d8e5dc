using System;

namespace VfioMigration.Core.Dirty;

/// <summary>
/// One interval of a dirty-rate measurement, in the units QEMU's calc-dirty-rate (MiB/s) and libvirt's
/// memory_dirty_rate (pages/s) report.
/// </summary>
public sealed class DirtyRateSample
{
    /// <summary>1, 2, ... (QEMU's dirty-sync-count, libvirt's memory_iteration).</summary>
    public required int Iteration { get; init; }

    public required int ContainerId { get; init; }

    /// <summary>When the interval ended.</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>How long the interval lasted.</summary>
    public required TimeSpan Interval { get; init; }

    /// <summary>Pages tracked (all mapped pages of the range read).</summary>
    public required ulong Pages { get; init; }

    /// <summary>Pages that read dirty in the interval.</summary>
    public required ulong DirtyPages { get; init; }

    public required ulong PageSize { get; init; }

    public ulong DirtyBytes => DirtyPages * PageSize;

    /// <summary>Dirty pages per second (libvirt memory_dirty_rate).</summary>
    public double DirtyPagesPerSecond => Interval.TotalSeconds <= 0 ? 0 : Math.Round(DirtyPages / Interval.TotalSeconds, 1);

    /// <summary>Dirty MiB per second (QEMU dirty-rate, libvirt dirtyrate.megabytes_per_second).</summary>
    public double DirtyRateMiBps => Interval.TotalSeconds <= 0 ? 0 : Math.Round(DirtyBytes / 1048576.0 / Interval.TotalSeconds, 3);

    public double DirtyPercent => Pages == 0 ? 0 : Math.Round(100.0 * DirtyPages / Pages, 3);

    /// <summary>Which pages the kernel can report; with AllMappedPages the rate is the mapped size per interval, not what the device wrote.</summary>
    public required DirtyScope Scope { get; init; }

    /// <summary>The device whose DMA log was read (Measure-DirtyRate -Device), or null for a container's tracking.</summary>
    public string? Device { get; init; }

    /// <summary>Where the numbers come from: Type1 (the container's dirty tracking) or DeviceLog (the device's own DMA log).</summary>
    public string Source => Device is null ? "Type1" : "DeviceLog";
}
