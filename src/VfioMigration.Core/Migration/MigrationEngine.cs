using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;
using S = VfioMigration.Core.Migration.VfioMigrationState;

namespace VfioMigration.Core.Migration;

/// <summary>Where a save, a restore or a migration is, for Write-Progress.</summary>
/// <param name="Step">"setup", "pre-copy round 2", "stop-copy read", "destination load", ...</param>
/// <param name="Phase">Pre-copy (the source runs) or stop-copy (it is stopped).</param>
/// <param name="Moved">Device-state bytes moved so far.</param>
/// <param name="Pending">Bytes still to move as far as known now.</param>
/// <param name="Total">The whole, when it is known in advance (a restore).</param>
public readonly record struct MigrationProgress(string Step, MigrationPhase Phase, ulong Moved, ulong? Pending, ulong? Total = null)
{
    /// <summary>0-100 when the whole is known (Total, or Moved + Pending), else -1.</summary>
    public int PercentComplete
    {
        get
        {
            ulong? whole = Total ?? (Pending is { } p ? Moved + p : null);
            return whole is { } w && w > 0 ? (int)Math.Min(100, Moved * 100 / w) : -1;
        }
    }
}

/// <summary>Where a device ended after a save, a restore or a migration, and what the module did to put it there.</summary>
public sealed class DeviceOutcome
{
    public required string Device { get; init; }

    /// <summary>"source" or "destination".</summary>
    public required string Role { get; init; }

    /// <summary>The state read back at the end (ERROR if it could not be read).</summary>
    public required VfioMigrationState State { get; init; }

    /// <summary>What happened to it, in words ("moved back to RUNNING", "reset (VFIO_DEVICE_RESET) to RUNNING", "left in ERROR: ...").</summary>
    public required string Action { get; init; }

    /// <summary>True when the device is not in RUNNING or STOP: it needs a person (Reset-VfioDevice, or closing it).</summary>
    public bool NeedsAttention => State is not (S.Running or S.Stop);

    public override string ToString() => $"the {Role} {Device} is in {MigrationFsm.Name(State)} ({Action})";
}

/// <summary>
/// A save, restore or migration that did not complete. By the time it is thrown the engine has cleaned up:
/// the source is back in the state it started in (or named in ERROR), the destination reset to its
/// initial state (or named where it has no reset), and no partial file is left.
/// </summary>
public sealed class MigrationFailedException : InvalidOperationException
{
    public MigrationFailedException(string errorId, MigrationStatus status, string phase, string message,
        DeviceOutcome? source, DeviceOutcome? destination, string? fileWritten, Exception? inner)
        : base(message, inner)
    {
        ErrorId = errorId;
        Status = status;
        Phase = phase;
        SourceOutcome = source;
        DestinationOutcome = destination;
        FileWritten = fileWritten;
    }

    /// <summary>The stable error id (FileWriteFailed, DeviceInError, DestinationRefused, Cancelled, ...).</summary>
    public string ErrorId { get; }

    /// <summary>Failed or Cancelled.</summary>
    public MigrationStatus Status { get; }

    /// <summary>Where it stopped: setup, pre-copy round k, switchover, stop-copy read, rename, destination load, resume.</summary>
    public string Phase { get; }

    /// <summary>Where the source ended (a save), or null.</summary>
    public DeviceOutcome? SourceOutcome { get; }

    /// <summary>Where the destination ended (a restore), or null.</summary>
    public DeviceOutcome? DestinationOutcome { get; }

    /// <summary>The state file that exists after all (a failure after its commit), or null: no file was written.</summary>
    public string? FileWritten { get; }
}

/// <summary>What the engine moves and how: Save, Start-VfioMigration and Restore are its three uses.</summary>
internal enum EngineMode
{
    /// <summary>Device → file: the pre-copy rounds asked for, then stop-and-copy whatever remains.</summary>
    Save,

    /// <summary>Device → device or file: pre-copy iterations over a link until QEMU's switchover rule holds.</summary>
    Migrate,

    /// <summary>Verified file → device.</summary>
    Restore,
}

/// <summary>What one run of the engine did.</summary>
internal sealed class EngineResult
{
    public required MigrationStatus Status { get; init; }

    public string? ErrorId { get; init; }

    public string? Error { get; init; }

    public Exception? Cause { get; init; }

    public required string Phase { get; init; }

    public DeviceOutcome? Source { get; init; }

    public DeviceOutcome? Destination { get; init; }

    /// <summary>The committed state file, if one was.</summary>
    public string? FileWritten { get; init; }

    /// <summary>A stop (Ctrl+C) arrived after the point of no return and was not honoured.</summary>
    public bool StopAfterPointOfNoReturn { get; init; }

    /// <summary>Throws the <see cref="MigrationFailedException"/> of a run that did not complete.</summary>
    public void ThrowIfNotCompleted()
    {
        if (Status == MigrationStatus.Completed) return;
        throw new MigrationFailedException(ErrorId ?? ErrorIds.MigrationFailed, Status, Phase, Error ?? Status.ToString(), Source, Destination, FileWritten, Cause);
    }
}

/// <summary>
/// The one migration engine: pre-copy, stop-copy and load for Save-VfioDeviceState, Start-VfioMigration
/// (to a device or a file) and Restore-VfioDeviceState, with one clean-up path that runs on every exit
/// that is not a completion: a kernel error, a device falling into ERROR, a destination refusing the
/// stream, a file-system error, a cancellation, or an exception thrown by the caller's own progress
/// callback (a stopped PowerShell pipeline throws from WriteProgress). docs/when-a-migration-fails.md is
/// the contract this class keeps.
/// </summary>
internal sealed class MigrationEngine
{
    public required EngineMode Mode { get; init; }

    public VfioDevice? Source { get; init; }

    public StateFile.Verified? Input { get; init; }

    public VfioDevice? Destination { get; init; }

    public StateFile.Writer? Output { get; init; }

    /// <summary>Save: pre-copy rounds at most; Migrate: iterations at most.</summary>
    public int MaxRounds { get; init; }

    /// <summary>Migrate: bandwidth, downtime limit, guest memory.</summary>
    public MigrationOptions Options { get; init; } = new();

    /// <summary>Save: move the source back to RUNNING after the file is committed.</summary>
    public bool ResumeSource { get; init; }

    /// <summary>The destination runs the state (Migrate; Restore -Resume), else it is left in STOP.</summary>
    public bool RunDestination { get; init; }

    public Action<MigrationProgress>? Progress { get; init; }

    public CancellationToken Cancel { get; init; }

    // What the run did so far: the clean-up reads these.
    private VfioMigrationState _sourceStart = S.Running;
    private VfioMigrationState _destinationStart = S.Running;
    private bool _sourceMoved;
    private bool _destinationMoved;
    private bool _handingOver;
    private bool _lateStop;
    private string _phase = "setup";
    private CancellationTokenSource? _stop;
    private Link? _link;
    private readonly Stopwatch _total = new();
    private Stopwatch? _stopped;

    public List<MigrationIteration> Iterations { get; } = new();

    public ulong PreCopyBytes { get; private set; }

    public ulong StopCopyBytes { get; private set; }

    public ulong GuestBytes { get; private set; }

    // The guest's bytes the current pre-copy round is still to send (progress only).
    private ulong _guestToSend;

    public ulong RemainingBytes { get; private set; }

    public int Rounds { get; private set; }

    public TimeSpan Downtime => _stopped?.Elapsed ?? TimeSpan.Zero;

    public TimeSpan TotalTime => _total.Elapsed;

    public TimeSpan ExpectedDowntime { get; private set; }

    /// <summary>Migrate: the device's own stop-copy size (MIG_DATA_SIZE), when it was asked.</summary>
    public ulong? StopCopySize { get; private set; }

    /// <summary>Migrate: what bandwidth × downtime limit allows to remain at switchover.</summary>
    public ulong Threshold => (ulong)(Options.Bandwidth * Options.DowntimeLimit.TotalSeconds);

    public EngineResult Run()
    {
        _total.Start();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        _stop = stop;
        var token = stop.Token;
        var buffer = ArrayPool<byte>.Shared.Rent(DeviceStream.BufferSize);
        try
        {
            if (Source is not null) _sourceStart = DeviceMigration.GetState(Source);
            if (Destination is not null) _destinationStart = DeviceMigration.GetState(Destination);
            if (Source is not null && _sourceStart == S.Stop) _stopped = Stopwatch.StartNew();
            if (Mode == EngineMode.Migrate) _link = new Link(Options.Bandwidth);
            Report(MigrationPhase.PreCopy, null);

            if (Destination is not null)
            {
                _destinationMoved = true;
                DeviceMigration.SetState(Destination, S.Resuming);
            }

            if (Source is not null)
            {
                if (!PreCopy(buffer, token))
                {
                    string why = NotConvergedReason();
                    var (s, d) = CleanUp();
                    return new EngineResult
                    {
                        Status = MigrationStatus.NotConverged, ErrorId = ErrorIds.MigrationNotConverged, Phase = _phase,
                        Error = $"{why}. {Outcomes(s, d)}", Source = s, Destination = d,
                    };
                }
                StopCopy(buffer, token);
            }
            else
            {
                LoadFile(buffer, token);
            }

            // The last moment a stop is honoured: past here the state is handed over, and a stop that comes
            // later (Ctrl+C, or the caller's callback throwing) is reported, not acted on.
            token.ThrowIfCancellationRequested();
            _handingOver = true;
            string? written = null;
            if (Output is not null)
            {
                _phase = "rename";
                Output.Commit();
                written = Output.Path;
            }
            if (Destination is not null)
            {
                _phase = "destination load";
                Report(MigrationPhase.StopCopy, 0);
                DeviceMigration.SetState(Destination, S.Stop);   // leaving RESUMING is where the driver checks the stream
                if (RunDestination)
                {
                    _phase = "resume";
                    DeviceMigration.SetState(Destination, S.Running);
                }
            }
            _stopped?.Stop();
            if (Source is not null && ResumeSource && Output is not null)
            {
                _phase = "resume";
                try
                {
                    DeviceMigration.SetState(Source, S.Running);
                }
                catch (Exception e) when (IsExpected(e))
                {
                    // The file is whole and committed: the failure is only the device's, and says so.
                    var s = SourceBack();
                    return new EngineResult
                    {
                        Status = MigrationStatus.Failed, ErrorId = ErrorIdFor(e), Phase = _phase, Cause = e, Source = s, FileWritten = written,
                        Error = $"The state file '{written}' was written, but {Source.Name} could not be resumed: {e.Message} {Outcomes(s, null)}",
                    };
                }
            }
            return new EngineResult
            {
                Status = MigrationStatus.Completed, Phase = "completed", FileWritten = written,
                StopAfterPointOfNoReturn = Cancel.IsCancellationRequested || stop.IsCancellationRequested || _lateStop,
                Source = Source is null ? null : Final(Source, "source", Mode != EngineMode.Save ? "stopped: its state moved"
                    : ResumeSource ? "runs again after the save" : _sourceStart == S.Stop ? "stopped, as it was" : "stopped after the save"),
                Destination = Destination is null ? null : Final(Destination, "destination", RunDestination ? "runs the state it received" : "holds the state it received"),
            };
        }
        catch (Exception e)
        {
            // The one clean-up path, whatever happened: then the caller hears what it was.
            var (s, d) = CleanUp();
            if (!IsExpected(e) && e is not OperationCanceledException) throw;
            bool cancelled = e is OperationCanceledException;
            string cause = cancelled
                ? (e.InnerException is { } stopper ? $"it was stopped ({stopper.GetType().Name}: {stopper.Message})" : "it was cancelled (Ctrl+C)")
                : e.Message.TrimEnd('.');
            return new EngineResult
            {
                Status = cancelled ? MigrationStatus.Cancelled : MigrationStatus.Failed,
                ErrorId = cancelled ? ErrorIds.Cancelled : ErrorIdFor(e),
                Phase = _phase,
                Cause = e,
                Source = s,
                Destination = d,
                Error = $"{Verb()} stopped during {_phase}: {cause}. {Outcomes(s, d)}",
            };
        }
        finally
        {
            _stop = null;
            _total.Stop();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The pre-copy rounds; false when a migration did not converge within its iterations.</summary>
    private bool PreCopy(byte[] buffer, CancellationToken token)
    {
        var source = Source!;
        var support = source.Migration;
        bool canPreCopy = _sourceStart == S.Running && MaxRounds > 0
            && (support.Protocol == MigrationProtocol.V1 || (support.Flags & VfioConstants.VFIO_MIGRATION_PRE_COPY) != 0);
        if (!canPreCopy) return true;
        _sourceMoved = true;
        DeviceMigration.SetState(source, S.PreCopy);
        // What the guest still has to send, for progress while the device's data is read: the first round sends
        // every mapped page (QEMU's first pass sends all RAM), later rounds what the last round found dirty.
        _guestToSend = Mode == EngineMode.Migrate ? MappedBytes() : 0;
        while (Rounds < MaxRounds)
        {
            token.ThrowIfCancellationRequested();
            Rounds++;
            _phase = $"pre-copy round {Rounds}";
            var clock = Stopwatch.StartNew();
            ulong sentBefore = PreCopyBytes;
            // A round reads what was pending when it began: a device that dirties its state faster than it
            // can be read would otherwise keep one round going for ever.
            ulong pendingAtStart = Pending(source, support);
            if (Mode == EngineMode.Save && pendingAtStart == 0) break;
            if (support.Protocol == MigrationProtocol.V2)
                DeviceStream.ReadV2(source, MigrationPhase.PreCopy, (ph, data) => Send(ph, data, Left(pendingAtStart, PreCopyBytes - sentBefore + (ulong)data.Length), token), buffer, token, pendingAtStart);
            else
                DeviceStream.ReadV1(source, support, MigrationPhase.PreCopy, (ph, data) => Send(ph, data, null, token), null, buffer, token);
            if (Mode == EngineMode.Save) continue;

            // Migrate: what remains decides the switchover (QEMU's rule).
            ulong read = PreCopyBytes - sentBefore;
            var (guestPages, guestDirty) = GuestDirty(token);
            _link!.Sent(guestDirty, token);
            GuestBytes += guestDirty;
            _guestToSend = guestDirty;
            ulong pendingAfter = Pending(source, support);
            RemainingBytes = pendingAfter + guestDirty;
            var took = clock.Elapsed;
            double seconds = Math.Max(took.TotalSeconds, 1e-6);
            // What the device dirtied meanwhile: what is pending now, less what was pending and not yet read.
            ulong leftover = pendingAtStart > read ? pendingAtStart - read : 0;
            ulong dirtied = pendingAfter > leftover ? pendingAfter - leftover : 0;
            Iterations.Add(new MigrationIteration
            {
                Iteration = Rounds, DeviceBytes = read, GuestDirtyPages = guestPages, GuestDirtyBytes = guestDirty,
                RemainingBytes = RemainingBytes, Duration = took,
                DirtyRateMiBps = Math.Round((dirtied + guestDirty) / 1048576.0 / seconds, 3),
                DirtyPagesPerSecond = Math.Round(guestPages / seconds, 1),
            });
            // QEMU: switch over when the estimate fits; then ask the exact size (MIG_DATA_SIZE) before stopping.
            ulong exact = RemainingBytes;
            if (RemainingBytes <= Threshold && support.Protocol == MigrationProtocol.V2)
            {
                StopCopySize = AskStopCopySize(source);
                exact = Math.Max(RemainingBytes, StopCopySize.Value + guestDirty);
            }
            // The round's last word on what remains: with the device's stop-copy size once it has been asked.
            Report(MigrationPhase.PreCopy, exact);
            ExpectedDowntime = TimeSpan.FromSeconds(exact / (double)Math.Max(1, Options.Bandwidth));
            if (exact <= Threshold) return true;
        }
        return Mode == EngineMode.Save;
    }

    /// <summary>Switchover: the source stops and what remains of its state moves.</summary>
    private void StopCopy(byte[] buffer, CancellationToken token)
    {
        var source = Source!;
        var support = source.Migration;
        token.ThrowIfCancellationRequested();
        _phase = "switchover";
        _stopped ??= Stopwatch.StartNew();
        _sourceMoved = true;
        DeviceMigration.SetState(source, S.StopCopy);
        _phase = "stop-copy read";
        Report(MigrationPhase.StopCopy, null);
        if (support.Protocol == MigrationProtocol.V2)
            DeviceStream.ReadV2(source, MigrationPhase.StopCopy, (ph, data) => Send(ph, data, null, token), buffer, token);
        else
            DeviceStream.ReadV1(source, support, MigrationPhase.StopCopy, (ph, data) => Send(ph, data, null, token), null, buffer, token);
        if (Mode == EngineMode.Migrate)
        {
            var (_, finalGuest) = GuestDirty(token);
            _link!.Sent(finalGuest, token);
            GuestBytes += finalGuest;
        }
        RemainingBytes = 0;
        _phase = "stop";
        DeviceMigration.SetState(source, S.Stop);
    }

    /// <summary>Restore: the verified file's chunks, each checked again as it is read, into the destination.</summary>
    private void LoadFile(byte[] buffer, CancellationToken token)
    {
        var input = Input!;
        var contents = input.Contents;
        var chunkBuffer = contents.MaxChunkLength <= buffer.Length ? buffer : new byte[contents.MaxChunkLength];
        _phase = "destination load";
        foreach (var chunk in contents.Chunks)
        {
            token.ThrowIfCancellationRequested();
            var data = input.ReadChunk(chunk, chunkBuffer);
            Deliver(chunk.Phase, data);
            Report(chunk.Phase, contents.TotalBytes - (PreCopyBytes + StopCopyBytes), contents.TotalBytes);
        }
    }

    /// <summary>One chunk of the stream: to the file or the destination, over the link, counted, reported.</summary>
    private void Send(MigrationPhase phase, ReadOnlySpan<byte> data, ulong? pending, CancellationToken token)
    {
        Deliver(phase, data);
        _link?.Sent((ulong)data.Length, token);
        // Migrating, what remains is the device's data not yet read this round and the guest's pages this round
        // still sends, so the first round never claims that nothing remains.
        Report(phase, phase == MigrationPhase.PreCopy && Mode == EngineMode.Migrate ? (pending ?? 0) + _guestToSend : pending);
    }

    private void Deliver(MigrationPhase phase, ReadOnlySpan<byte> data)
    {
        if (Output is not null) Output.WriteChunk(phase, data);
        if (Destination is not null)
        {
            var support = Destination.Migration;
            if (support.Protocol == MigrationProtocol.V2) DeviceStream.WriteV2(Destination, data);
            else DeviceStream.WriteV1Transaction(Destination, support, data);
        }
        if (phase == MigrationPhase.PreCopy) PreCopyBytes += (ulong)data.Length;
        else StopCopyBytes += (ulong)data.Length;
    }

    /// <summary>
    /// The caller's progress callback. Whatever it throws (PipelineStoppedException from a stopped
    /// PowerShell pipeline, above all) stops the run like a cancellation, so the clean-up runs.
    /// </summary>
    private void Report(MigrationPhase phase, ulong? pending, ulong? total = null)
    {
        if (Progress is null) return;
        try
        {
            Progress(new MigrationProgress(_phase, phase, PreCopyBytes + StopCopyBytes + GuestBytes, pending, total));
        }
        catch (Exception) when (_handingOver)
        {
            _lateStop = true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _stop?.Cancel();
            throw new OperationCanceledException("the caller stopped the run", e);
        }
    }

    /// <summary>
    /// Puts everything back after a run that did not complete, and never throws: the partial file is
    /// removed; the source goes back to the state it started in (a source in ERROR is left there and
    /// named); the destination is reset to its initial state where it supports reset, else named where it is.
    /// </summary>
    private (DeviceOutcome? Source, DeviceOutcome? Destination) CleanUp()
    {
        Output?.Dispose();
        _stopped?.Stop();
        var s = Source is null ? null : SourceBack();
        var d = Destination is null ? null : DestinationBack();
        return (s, d);
    }

    private DeviceOutcome SourceBack()
    {
        var device = Source!;
        var now = SafeState(device);
        if (!_sourceMoved && now == _sourceStart) return Outcome(device, "source", now, $"still in {MigrationFsm.Name(now)}: it was not moved");
        if (now == _sourceStart) return Outcome(device, "source", now, $"back in {MigrationFsm.Name(now)}, where it started");
        if (now == S.Error)
            return Outcome(device, "source", now, "left in ERROR: its driver failed it and its state may be lost; Reset-VfioDevice brings it back to RUNNING with a reset state");
        try
        {
            DeviceMigration.SetState(device, _sourceStart);
            return Outcome(device, "source", SafeState(device), $"moved back to {MigrationFsm.Name(_sourceStart)}");
        }
        catch (Exception e) when (IsExpected(e))
        {
            var at = SafeState(device);
            return Outcome(device, "source", at, $"could not be moved back to {MigrationFsm.Name(_sourceStart)} ({e.Message.TrimEnd('.')})");
        }
    }

    private DeviceOutcome DestinationBack()
    {
        var device = Destination!;
        var now = SafeState(device);
        if (!HasPartialStream)
        {
            // Nothing of the stream reached it: no reset is needed to forget it.
            if (now == _destinationStart) return Outcome(device, "destination", now, $"still in {MigrationFsm.Name(now)}: it took no state");
            if (now is S.Stop or S.Running or S.Resuming)
            {
                try
                {
                    DeviceMigration.SetState(device, _destinationStart);
                    return Outcome(device, "destination", SafeState(device), $"moved back to {MigrationFsm.Name(_destinationStart)}: it took no state");
                }
                catch (Exception e) when (IsExpected(e)) { /* a reset below, where it has one */ }
                now = SafeState(device);
            }
        }
        if (!SupportsReset(device))
        {
            return Outcome(device, "destination", now, now == S.Resuming
                ? "left in RESUMING with part of a stream: it offers no VFIO_DEVICE_RESET, so the module cannot take the partial state back, " +
                  "and the module does not ask its driver to load a partial stream; its driver decides what closing it does (mtty keeps the state): " +
                  "recreate the mdev or rebind the PCI function to start it afresh"
                : $"left in {MigrationFsm.Name(now)}: it offers no VFIO_DEVICE_RESET; recreate the mdev or rebind the PCI function to start it afresh");
        }
        try
        {
            DeviceMigration.Reset(device);
            if (_destinationStart == S.Stop) DeviceMigration.SetState(device, S.Stop);
            return Outcome(device, "destination", SafeState(device), _destinationStart == S.Stop
                ? "reset (VFIO_DEVICE_RESET) and moved back to STOP: it holds no partial state"
                : "reset (VFIO_DEVICE_RESET) to RUNNING: it holds no partial state");
        }
        catch (Exception e) when (IsExpected(e))
        {
            return Outcome(device, "destination", SafeState(device), $"could not be reset ({e.Message.TrimEnd('.')})");
        }
    }

    /// <summary>Some of the stream reached the destination: only a reset takes it back.</summary>
    private bool HasPartialStream => _destinationMoved && (PreCopyBytes + StopCopyBytes) > 0;

    private static bool SupportsReset(VfioDevice device)
    {
        try { return (device.GetInfo().flags & VfioConstants.VFIO_DEVICE_FLAGS_RESET) != 0; }
        catch (VfioNativeException) { return false; }
    }

    private static DeviceOutcome Outcome(VfioDevice device, string role, VfioMigrationState state, string action) =>
        new() { Device = device.Name, Role = role, State = state, Action = action };

    private static DeviceOutcome Final(VfioDevice device, string role, string action) => Outcome(device, role, SafeState(device), action);

    private static VfioMigrationState SafeState(VfioDevice device)
    {
        try { return DeviceMigration.GetState(device); }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException) { return S.Error; }
    }

    private string Outcomes(DeviceOutcome? s, DeviceOutcome? d)
    {
        var parts = new List<string>();
        if (s is not null) parts.Add(Capital(s.ToString()) + ".");
        if (d is not null) parts.Add(Capital(d.ToString()) + ".");
        if (Output is not null) parts.Add(Output.Committed ? $"The state file '{Output.Path}' was written." : "No state file was written.");
        return string.Join(" ", parts);
    }

    private static string Capital(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private string Verb() => Mode switch
    {
        EngineMode.Save => $"The save of {Source!.Name}",
        EngineMode.Restore => $"The restore into {Destination!.Name}",
        _ => $"The migration of {Source!.Name}",
    };

    /// <summary>Why pre-copy did not converge: the actual blocker with both of its figures.</summary>
    private string NotConvergedReason()
    {
        var source = Source!;
        string limit = $"{Readable(Options.Bandwidth)}/s × {Options.DowntimeLimit.TotalMilliseconds} ms allows {Threshold} bytes";
        if (source.Migration.Protocol == MigrationProtocol.V2 && StopCopySize is null)
        {
            try { StopCopySize = AskStopCopySize(source); }
            catch (Exception e) when (IsExpected(e)) { /* the other figures still say enough */ }
        }
        if (StopCopySize is { } size && size > Threshold)
            return $"pre-copy did not converge in {Rounds} iterations: the device's stop-copy size ({size} bytes, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE) alone is more than {limit}; " +
                   "it cannot switch over within the downtime limit at this bandwidth whatever pre-copy sends: raise -Bandwidth or -DowntimeLimit";
        double rate = Iterations.Count > 0 ? Iterations[^1].DirtyRateMiBps : 0;
        double link = Options.Bandwidth / 1048576.0;
        bool notShrinking = Iterations.Count >= 2 && Iterations[^1].RemainingBytes >= Iterations[^2].RemainingBytes;
        if (rate >= link * 0.9 || notShrinking)
            return $"pre-copy did not converge in {Rounds} iterations: what remains does not shrink ({RemainingBytes} bytes remain; {limit}): the device and guest dirty {rate:0.###} MiB/s against the link's {link:0.###} MiB/s, " +
                   "so each iteration sends about what the next one finds dirty again: raise -Bandwidth or reduce the load";
        return $"pre-copy did not converge in {Rounds} iterations: {RemainingBytes} bytes remain, more than {limit}; the device and guest dirty {rate:0.###} MiB/s against the link's {link:0.###} MiB/s: " +
               "more iterations (-MaxIterations) or a higher -DowntimeLimit may let it converge";
    }

    private static string Readable(ulong bytes) => bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? $"{bytes >> 20} MiB" : $"{bytes} B";

    // QEMU assumes 100 GiB when a device cannot say, so that the limit is never met by accident.
    private static ulong AskStopCopySize(VfioDevice source) => source.GetStopCopySize() ?? 100UL << 30;

    /// <summary>What the source still has to send while running: PRECOPY_INFO (v2) or pending_bytes (v1).</summary>
    private static ulong Pending(VfioDevice source, MigrationSupport support)
    {
        if (support.Protocol == MigrationProtocol.V1) return DeviceStream.V1Pending(source, support);
        var (initial, dirty) = DeviceStream.PrecopyInfo(source);
        return initial + dirty;
    }

    // A device may hand over more than it said was pending: what is left then is nothing, not a wrapped number.
    private static ulong Left(ulong whole, ulong done) => whole > done ? whole - done : 0;

    private ulong MappedBytes()
    {
        ulong bytes = 0;
        if (Options.Container is { } container)
            foreach (var m in container.Mappings) bytes += m.Size;
        return bytes;
    }

    private (ulong Pages, ulong Bytes) GuestDirty(CancellationToken token)
    {
        var container = Options.Container;
        if (container?.MappedExtent is not { } extent) return (0, 0);
        var bitmap = container.GetDirtyBitmap(extent.Iova, extent.Size, cancel: token);
        return (bitmap.DirtyPages, bitmap.DirtyBytes);
    }

    /// <summary>The failures the engine reports as an outcome; anything else is a bug and is rethrown after the clean-up.</summary>
    internal static bool IsExpected(Exception e) =>
        e is VfioNativeException or VfioRuleException or MigrationTransitionException or IOException or UnauthorizedAccessException;

    /// <summary>The stable error id of a failure.</summary>
    private string ErrorIdFor(Exception e) => e switch
    {
        MigrationTransitionException t when t.StoppedAt == S.Error => ErrorIds.DeviceInError,
        MigrationTransitionException t when Destination is not null && t.Device == Destination.Name && t.From == S.Resuming => ErrorIds.DestinationRefused,
        MigrationTransitionException => ErrorIds.TransitionFailed,
        VfioRuleException r => r.RuleId,
        VfioNativeException n when Destination is not null && n.Target.Contains(Destination.Name, StringComparison.Ordinal) => ErrorIds.DestinationRefused,
        VfioNativeException => ErrorIds.SyscallFailed,
        _ => ErrorIds.MigrationFailed,
    };

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
