using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
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

    /// <summary>Why it did not complete (QEMU error-desc).</summary>
    public string? ErrorDescription { get; init; }

    public required HostKind HostKind { get; init; }
}

/// <summary>
/// A pre-copy migration of one device: iterations while the source runs, switchover when what remains
/// fits in bandwidth × downtime limit (QEMU's rule), then stop-and-copy into the destination device (or a
/// state file). Data moves at most at the given bandwidth, so a device that dirties faster than the link
/// drains it does not converge, as on a real link.
/// </summary>
public static class MigrationRunner
{
    public static MigrationReport Run(VfioDevice source, VfioDevice? destination, string? path, MigrationOptions options,
        Action<string, ulong, ulong>? progress = null, CancellationToken cancel = default)
    {
        if ((destination is null) == (path is null)) throw new ArgumentException("Give a destination device or a state file, not both.");
        var support = source.Migration;
        if (support.Protocol == MigrationProtocol.None)
            throw new VfioRuleException("NoMigrationSupport", $"{source.Name} has no migration driver.");
        var initial = DeviceMigration.GetState(source);
        if (initial != VfioMigrationState.Running)
            throw new VfioRuleException("WrongStateForMigration", $"{source.Name} is in {MigrationFsm.Name(initial)}; a migration starts from RUNNING.");
        if (destination is not null)
        {
            string? mismatch = source.Identity.Mismatch(destination.Identity);
            if (mismatch is not null) throw new VfioRuleException("DestinationMismatch", $"{destination.Name} cannot take the state of {source.Name}: {mismatch}.");
        }
        if (options.Container is { IsTracking: false } c)
            throw new VfioRuleException("TrackingNotStarted", $"container {c.Id} is not tracking dirty pages; start it (Start-DirtyTracking) so guest memory counts in what remains.");

        var total = Stopwatch.StartNew();
        var link = new Link(options.Bandwidth);
        var iterations = new List<MigrationIteration>();
        ulong precopy = 0, stopcopy = 0, guestBytes = 0, remaining = 0;
        TimeSpan expected = TimeSpan.Zero;
        Stopwatch? stopped = null;
        var buffer = ArrayPool<byte>.Shared.Rent(DeviceState.BufferSize);
        StateFile.Writer? file = path is null ? null : new StateFile.Writer(path, source.Identity, 4096);
        bool destinationResuming = false;

        void Send(MigrationPhase phase, ReadOnlySpan<byte> data)
        {
            if (file is not null) file.WriteChunk(phase, data);
            else if (support.Protocol == MigrationProtocol.V2) DeviceState.WriteAll(destination!, data);
            else DeviceState.WriteV1Transaction(destination!, destination!.Migration, data);
            link.Sent((ulong)data.Length, cancel);
            if (phase == MigrationPhase.PreCopy) precopy += (ulong)data.Length; else stopcopy += (ulong)data.Length;
            progress?.Invoke(phase == MigrationPhase.PreCopy ? $"iteration {iterations.Count + 1}" : "stop-and-copy", precopy + stopcopy + guestBytes, remaining);
        }

        MigrationReport Report(MigrationStatus status, string? error) => new()
        {
            Source = source.Name, Destination = destination?.Name ?? Path.GetFullPath(path!), Status = status, Protocol = support.Protocol,
            Iterations = iterations.Count, PrecopyBytes = precopy, StopCopyBytes = stopcopy, GuestBytes = guestBytes, RemainingBytes = remaining,
            Downtime = stopped?.Elapsed ?? TimeSpan.Zero, ExpectedDowntime = expected, TotalTime = total.Elapsed,
            Bandwidth = options.Bandwidth, DowntimeLimit = options.DowntimeLimit, IterationDetails = iterations,
            SourceState = SafeState(source), DestinationState = destination is null ? null : SafeState(destination),
            ErrorDescription = error, HostKind = source.Host.Kind,
        };

        try
        {
            if (destination is not null)
            {
                DeviceMigration.SetState(destination, VfioMigrationState.Resuming);
                destinationResuming = true;
            }
            bool preCopy = support.Protocol == MigrationProtocol.V1 || (support.Flags & VfioConstants.VFIO_MIGRATION_PRE_COPY) != 0;
            if (preCopy) DeviceMigration.SetState(source, VfioMigrationState.PreCopy);
            ulong threshold = (ulong)(options.Bandwidth * options.DowntimeLimit.TotalSeconds);
            bool converged = !preCopy;
            while (preCopy && iterations.Count < options.MaxIterations)
            {
                cancel.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                ulong sentBefore = precopy;
                ulong pendingAtStart = DevicePending(source, support);
                if (support.Protocol == MigrationProtocol.V2) DeviceState.ReadV2(source, MigrationPhase.PreCopy, Send, buffer, cancel, pendingAtStart);
                else DeviceState.ReadV1(source, support, MigrationPhase.PreCopy, Send, null, buffer, cancel);
                ulong read = precopy - sentBefore;
                var (guestPages, guestDirty) = GuestDirty(options.Container, cancel);
                link.Sent(guestDirty, cancel);
                guestBytes += guestDirty;
                ulong pendingAfter = DevicePending(source, support);
                remaining = pendingAfter + guestDirty;
                var took = clock.Elapsed;
                double seconds = Math.Max(took.TotalSeconds, 1e-6);
                // What the device dirtied meanwhile: what is pending now, less what was pending and not yet read.
                ulong leftover = pendingAtStart > read ? pendingAtStart - read : 0;
                ulong dirtied = pendingAfter > leftover ? pendingAfter - leftover : 0;
                iterations.Add(new MigrationIteration
                {
                    Iteration = iterations.Count + 1, DeviceBytes = precopy - sentBefore, GuestDirtyPages = guestPages, GuestDirtyBytes = guestDirty,
                    RemainingBytes = remaining, Duration = took,
                    DirtyRateMiBps = Math.Round((dirtied + guestDirty) / 1048576.0 / seconds, 3),
                    DirtyPagesPerSecond = Math.Round(guestPages / seconds, 1),
                });
                // QEMU: switch over when the estimate fits; then ask the exact size (MIG_DATA_SIZE) before stopping.
                ulong exact = remaining;
                if (remaining <= threshold && support.Protocol == MigrationProtocol.V2) exact = Math.Max(remaining, StopCopySize(source) + guestDirty);
                expected = TimeSpan.FromSeconds(exact / (double)Math.Max(1, options.Bandwidth));
                if (exact <= threshold) { converged = true; break; }
            }
            if (!converged)
            {
                string why = $"pre-copy did not converge in {iterations.Count} iterations: {remaining} bytes remain, more than {options.Bandwidth} B/s × {options.DowntimeLimit.TotalMilliseconds} ms allows ({(ulong)(options.Bandwidth * options.DowntimeLimit.TotalSeconds)} bytes); the device dirties faster than the link drains it";
                Abort(source, destination, destinationResuming, file);
                return Report(MigrationStatus.NotConverged, why);
            }

            // Switchover: the source stops; what remains moves; the destination takes it and runs.
            stopped = Stopwatch.StartNew();
            DeviceMigration.SetState(source, VfioMigrationState.StopCopy);
            if (support.Protocol == MigrationProtocol.V2) DeviceState.ReadV2(source, MigrationPhase.StopCopy, Send, buffer, cancel);
            else DeviceState.ReadV1(source, support, MigrationPhase.StopCopy, Send, null, buffer, cancel);
            var (_, finalGuest) = GuestDirty(options.Container, cancel);
            link.Sent(finalGuest, cancel);
            guestBytes += finalGuest;
            remaining = 0;
            DeviceMigration.SetState(source, VfioMigrationState.Stop);
            if (destination is not null)
            {
                DeviceMigration.SetState(destination, VfioMigrationState.Stop);   // the driver validates here
                DeviceMigration.SetState(destination, VfioMigrationState.Running);
            }
            else
            {
                file!.Commit();
            }
            stopped.Stop();
            return Report(MigrationStatus.Completed, null);
        }
        catch (OperationCanceledException)
        {
            Abort(source, destination, destinationResuming, file);
            return Report(MigrationStatus.Cancelled, "cancelled; the source was moved back to RUNNING");
        }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException or MigrationTransitionException or IOException)
        {
            Abort(source, destination, destinationResuming, file);
            return Report(MigrationStatus.Failed, e.Message);
        }
        finally
        {
            file?.Dispose();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A migration that does not complete leaves the source running and the destination as it can be:
    /// a destination left in RESUMING with part of a stream is reset (VFIO_DEVICE_RESET), and a partial
    /// state file is deleted.
    /// </summary>
    private static void Abort(VfioDevice source, VfioDevice? destination, bool destinationResuming, StateFile.Writer? file)
    {
        file?.Dispose();
        DeviceState.BackToRunning(source);
        if (destination is not null && destinationResuming)
        {
            try { DeviceMigration.Reset(destination); }
            catch (VfioNativeException) { /* a device without reset stays in RESUMING; its state says so in the report */ }
        }
    }

    private static VfioMigrationState SafeState(VfioDevice device)
    {
        try { return DeviceMigration.GetState(device); }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException) { return VfioMigrationState.Error; }
    }

    /// <summary>What the source still has to send while running: PRECOPY_INFO (v2) or pending_bytes (v1).</summary>
    private static ulong DevicePending(VfioDevice source, MigrationSupport support)
    {
        if (support.Protocol == MigrationProtocol.V1) return DeviceState.ReadField(source, (long)support.V1Region!.Offset + 8, "pending_bytes");
        var (initial, dirty) = DeviceState.PrecopyInfo(source);
        return initial + dirty;
    }

    // QEMU assumes 100 GiB when a device cannot say, so that the limit is never met by accident.
    private static ulong StopCopySize(VfioDevice source) => source.GetStopCopySize() ?? 100UL << 30;

    private static (ulong Pages, ulong Bytes) GuestDirty(VfioContainer? container, CancellationToken cancel)
    {
        if (container?.MappedExtent is not { } extent) return (0, 0);
        var bitmap = container.GetDirtyBitmap(extent.Iova, extent.Size, cancel: cancel);
        return (bitmap.DirtyPages, bitmap.DirtyBytes);
    }

    /// <summary>A link of a given bandwidth: sending waits until the bytes would have crossed it.</summary>
    private sealed class Link
    {
        private readonly double _bytesPerSecond;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private double _sent;

        public Link(ulong bandwidth) => _bytesPerSecond = Math.Max(1, bandwidth);

        public void Sent(ulong bytes, CancellationToken cancel)
        {
            _sent += bytes;
            var due = TimeSpan.FromSeconds(_sent / _bytesPerSecond) - _clock.Elapsed;
            if (due > TimeSpan.Zero && cancel.WaitHandle.WaitOne(due)) cancel.ThrowIfCancellationRequested();
        }
    }
}
