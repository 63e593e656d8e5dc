using System;
using System.Collections.Generic;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>How a migration ended, in QEMU's query-migrate words where they fit.</summary>
public enum MigrationStatus
{
    /// <summary>Switched over; the destination runs the device's state (or the state file is complete).</summary>
    Completed,

    /// <summary>Pre-copy never got what remains under bandwidth × downtime limit within -MaxIterations; the source runs on.</summary>
    NotConverged,

    /// <summary>A device or a call failed; the source was moved back to RUNNING where it could be.</summary>
    Failed,

    /// <summary>Cancelled (Ctrl+C); the source runs on, as after cancelling a QEMU migration.</summary>
    Cancelled,
}

/// <summary>The knobs of a migration, named as QEMU and libvirt name them.</summary>
public sealed class MigrationOptions
{
    /// <summary>At most this many pre-copy iterations (QEMU's dirty-sync-count, libvirt's memory_iteration).</summary>
    public int MaxIterations { get; init; } = 30;

    /// <summary>Target time the source may be stopped (QEMU downtime-limit, default 300 ms).</summary>
    public TimeSpan DowntimeLimit { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>The link's bytes per second: data moves at most this fast, and switchover needs what remains ≤ Bandwidth × DowntimeLimit.</summary>
    public ulong Bandwidth { get; init; } = 128UL << 20;

    /// <summary>The slowest link a migration accepts (1 MiB/s): below it a device's state takes hours, and 0 never arrives.</summary>
    public const ulong MinimumBandwidth = 1UL << 20;

    /// <summary>Guest memory whose dirty pages count as part of what remains (its dirty tracking must be running).</summary>
    public VfioContainer? Container { get; init; }
}

/// <summary>One pre-copy iteration.</summary>
public sealed class MigrationIteration
{
    public required int Iteration { get; init; }

    /// <summary>Device-state bytes sent in the iteration.</summary>
    public required ulong DeviceBytes { get; init; }

    /// <summary>Guest pages that read dirty in the iteration (with a container).</summary>
    public required ulong GuestDirtyPages { get; init; }

    public required ulong GuestDirtyBytes { get; init; }

    /// <summary>What remained after the iteration: device pending bytes plus guest dirty bytes.</summary>
    public required ulong RemainingBytes { get; init; }

    public required TimeSpan Duration { get; init; }

    /// <summary>Device and guest bytes dirtied per second during the iteration, in MiB/s (QEMU's dirty-rate unit).</summary>
    public required double DirtyRateMiBps { get; init; }

    /// <summary>Guest dirty pages per second (libvirt's memory_dirty_rate).</summary>
    public required double DirtyPagesPerSecond { get; init; }
}

/// <summary>
/// What Start-VfioMigration returns, with the names QEMU query-migrate and libvirt domjobinfo users know:
/// status, iterations (dirty-sync-count), bytes per phase, downtime and total time in milliseconds'
/// meaning, and the dirty rate of each iteration.
/// </summary>
public sealed class MigrationReport
{
    public required string Source { get; init; }

    /// <summary>The destination device, or the state file.</summary>
    public required string Destination { get; init; }

    public required MigrationStatus Status { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    /// <summary>Pre-copy iterations run.</summary>
    public required int Iterations { get; init; }

    /// <summary>Device-state bytes sent while the source ran (QEMU precopy-bytes).</summary>
    public required ulong PrecopyBytes { get; init; }

    /// <summary>Device-state bytes sent while the source was stopped (QEMU downtime-bytes).</summary>
    public required ulong StopCopyBytes { get; init; }

    /// <summary>Guest dirty bytes counted as sent (with a container).</summary>
    public required ulong GuestBytes { get; init; }

    /// <summary>Everything sent (libvirt data_processed).</summary>
    public ulong TransferredBytes => PrecopyBytes + StopCopyBytes + GuestBytes;

    /// <summary>What remained at the end (libvirt data_remaining).</summary>
    public required ulong RemainingBytes { get; init; }

    /// <summary>Measured: how long the source was stopped.</summary>
    public required TimeSpan Downtime { get; init; }

    /// <summary>What remained ÷ bandwidth at the last decision (QEMU expected-downtime).</summary>
    public required TimeSpan ExpectedDowntime { get; init; }

    public required TimeSpan TotalTime { get; init; }

    public required ulong Bandwidth { get; init; }

    public required TimeSpan DowntimeLimit { get; init; }

    public required IReadOnlyList<MigrationIteration> IterationDetails { get; init; }

    public required VfioMigrationState SourceState { get; init; }

    public VfioMigrationState? DestinationState { get; init; }

    /// <summary>Why it did not complete (QEMU error-desc), with where both devices ended.</summary>
    public string? ErrorDescription { get; init; }

    /// <summary>The stable error id of a migration that did not complete (MigrationNotConverged, DeviceInError, DestinationRefused, FileWriteFailed, Cancelled, ...).</summary>
    public string? ErrorId { get; init; }

    /// <summary>Where a migration that did not complete stopped: setup, pre-copy round k, switchover, stop-copy read, rename, destination load, resume.</summary>
    public string? FailedPhase { get; init; }

    /// <summary>Where the source ended and what the module did to it.</summary>
    public required DeviceOutcome SourceOutcome { get; init; }

    /// <summary>Where the destination device ended (null for a state file).</summary>
    public DeviceOutcome? DestinationOutcome { get; init; }

    /// <summary>The device's stop-copy size (VFIO_DEVICE_FEATURE_MIG_DATA_SIZE) when it was asked at switchover or to explain non-convergence.</summary>
    public ulong? StopCopySize { get; init; }

    /// <summary>What Bandwidth × DowntimeLimit allows to remain at switchover.</summary>
    public required ulong AllowedBytes { get; init; }

    /// <summary>
    /// A completed migration whose measured downtime exceeded DowntimeLimit. Like QEMU, the module uses the
    /// limit as the target of the switchover decision, not as a guarantee: it says so instead of failing.
    /// </summary>
    public bool DowntimeExceeded => Status == MigrationStatus.Completed && Downtime > DowntimeLimit;

    /// <summary>A stop (Ctrl+C) came after the point of no return (destination running, file committed) and was not honoured.</summary>
    public bool StopAfterPointOfNoReturn { get; init; }

    /// <summary>The state file written (a migration to a file that completed).</summary>
    public string? FileWritten { get; init; }

    public required HostKind HostKind { get; init; }
}

/// <summary>
/// A pre-copy migration of one device: iterations while the source runs, switchover when what remains
/// fits in bandwidth × downtime limit (QEMU's rule), then stop-and-copy into the destination device (or a
/// state file). Data moves at most at the given bandwidth, so a device that dirties faster than the link
/// drains it does not converge, as on a real link. Runs on <see cref="MigrationEngine"/>: every exit that
/// is not a completion leaves the source back in RUNNING (or named in ERROR), the destination reset, and
/// no partial file, and the report says so.
/// </summary>
public static class MigrationRunner
{
    /// <summary>
    /// Checks the request (throwing <see cref="VfioRuleException"/> before anything moves), then migrates and
    /// reports. A failure or a stop during the migration is a report with its status, never an exception;
    /// only a bug escapes, and then only after the clean-up.
    /// </summary>
    public static MigrationReport Run(VfioDevice source, VfioDevice? destination, string? path, MigrationOptions options,
        Action<MigrationProgress>? progress = null, CancellationToken cancel = default, bool replace = false)
    {
        if ((destination is null) == (path is null)) throw new ArgumentException("Give a destination device or a state file, not both.");
        var support = source.Migration;
        if (support.Protocol == MigrationProtocol.None)
            throw new VfioRuleException("NoMigrationSupport", $"{source.Name} has no migration driver.");
        if (options.Bandwidth < MigrationOptions.MinimumBandwidth)
            throw new VfioRuleException("BandwidthTooLow", $"a bandwidth of {options.Bandwidth} B/s would take hours (0 never arrives): give at least 1MB (1 MiB/s).");
        if (options.DowntimeLimit <= TimeSpan.Zero)
            throw new VfioRuleException("DowntimeLimitTooLow", "the downtime limit must be more than 0 ms.");
        var initial = DeviceMigration.GetState(source);
        if (initial != VfioMigrationState.Running)
            throw new VfioRuleException("WrongStateForMigration", $"{source.Name} is in {MigrationFsm.Name(initial)}; a migration starts from RUNNING.");
        if (destination is not null)
        {
            if (string.Equals(destination.Name, source.Name, StringComparison.OrdinalIgnoreCase))
                throw new VfioRuleException("DestinationIsSource", $"{source.Name} cannot be migrated into itself.");
            string? mismatch = source.Identity.Mismatch(destination.Identity);
            if (mismatch is not null) throw new VfioRuleException("DestinationMismatch", $"{destination.Name} cannot take the state of {source.Name}: {mismatch}.");
            var d = DeviceMigration.GetState(destination);
            if (d is not (VfioMigrationState.Running or VfioMigrationState.Stop))
                throw new VfioRuleException("WrongStateForRestore", $"{destination.Name} is in {MigrationFsm.Name(d)}; a destination starts from RUNNING or STOP.");
        }
        if (options.Container is { IsTracking: false } c)
            throw new VfioRuleException("TrackingNotStarted", $"container {c.Id} is not tracking dirty pages; start it (Start-DirtyTracking) so guest memory counts in what remains.");

        // The file is the last check: it is created (0600, beside its name) only when everything else holds.
        using var file = path is null ? null : new StateFile.Writer(path, source.Identity, 4096, replace);
        var engine = new MigrationEngine
        {
            Mode = EngineMode.Migrate, Source = source, Destination = destination, Output = file,
            MaxRounds = options.MaxIterations, Options = options, RunDestination = true, Progress = progress, Cancel = cancel,
        };
        var r = engine.Run();
        return new MigrationReport
        {
            Source = source.Name, Destination = destination?.Name ?? file!.Path, Status = r.Status, Protocol = support.Protocol,
            Iterations = engine.Iterations.Count, PrecopyBytes = engine.PreCopyBytes, StopCopyBytes = engine.StopCopyBytes,
            GuestBytes = engine.GuestBytes, RemainingBytes = r.Status == MigrationStatus.Completed ? 0 : engine.RemainingBytes,
            Downtime = engine.Downtime, ExpectedDowntime = engine.ExpectedDowntime, TotalTime = engine.TotalTime,
            Bandwidth = options.Bandwidth, DowntimeLimit = options.DowntimeLimit, IterationDetails = engine.Iterations,
            SourceState = r.Source!.State, DestinationState = r.Destination?.State,
            SourceOutcome = r.Source, DestinationOutcome = r.Destination,
            ErrorDescription = r.Error, ErrorId = r.ErrorId, FailedPhase = r.Status == MigrationStatus.Completed ? null : r.Phase,
            StopCopySize = engine.StopCopySize, AllowedBytes = engine.Threshold, StopAfterPointOfNoReturn = r.StopAfterPointOfNoReturn,
            FileWritten = r.FileWritten, HostKind = source.Host.Kind,
        };
    }
}
