using System;
using System.IO;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>What Save-VfioDeviceState did.</summary>
public sealed class StateSaveResult
{
    public required string Device { get; init; }

    public required string Path { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    public required ulong PreCopyBytes { get; init; }

    public required ulong StopCopyBytes { get; init; }

    public ulong TotalBytes => PreCopyBytes + StopCopyBytes;

    /// <summary>Pre-copy rounds read (a round ends when the device has no more data for now).</summary>
    public required int PreCopyRounds { get; init; }

    public required TimeSpan TotalTime { get; init; }

    /// <summary>How long the device was stopped (from leaving a running state to the end, or to RUNNING again with -Resume).</summary>
    public required TimeSpan Downtime { get; init; }

    public required VfioMigrationState FinalState { get; init; }

    /// <summary>A stop (Ctrl+C) came after the file was committed and was not honoured: the file is whole.</summary>
    public bool StopAfterPointOfNoReturn { get; init; }

    public required HostKind HostKind { get; init; }
}

/// <summary>What Restore-VfioDeviceState did.</summary>
public sealed class StateRestoreResult
{
    public required string Device { get; init; }

    public required string Path { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    public required ulong Bytes { get; init; }

    public required int Chunks { get; init; }

    public required TimeSpan TotalTime { get; init; }

    public required VfioMigrationState FinalState { get; init; }

    /// <summary>A stop (Ctrl+C) came after the point of no return (the file committed, the device loaded) and was not honoured.</summary>
    public bool StopAfterPointOfNoReturn { get; init; }

    public required HostKind HostKind { get; init; }
}

/// <summary>Moves a device's state out to a state file and back in, for both protocols, on <see cref="MigrationEngine"/>.</summary>
public static class DeviceState
{
    /// <summary>Bytes read from a data fd per call (QEMU's VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE).</summary>
    public const int BufferSize = DeviceStream.BufferSize;

    /// <summary>
    /// Saves the device's state: the pre-copy rounds the device supports (at most
    /// <paramref name="maxPreCopyRounds"/>), then stop-and-copy, into a state file written under a
    /// temporary name (0600) and renamed only when complete. The device ends in STOP, or RUNNING with
    /// <paramref name="resume"/>. A request the module refuses throws <see cref="VfioRuleException"/> before
    /// anything moves (an existing file without <paramref name="replace"/>, a FIFO or a directory as
    /// target). A save that fails or is cancelled throws <see cref="MigrationFailedException"/> after the
    /// clean-up: no partial file, the device back where it started (or named in ERROR).
    /// </summary>
    public static StateSaveResult Save(VfioDevice device, string path, int maxPreCopyRounds = 1, bool resume = false,
        Action<MigrationProgress>? progress = null, CancellationToken cancel = default, bool replace = true)
    {
        var support = device.Migration;
        if (support.Protocol == MigrationProtocol.None)
            throw new VfioRuleException("NoMigrationSupport", $"{device.Name} has no migration driver, so it has no state to save.");
        var start = DeviceMigration.GetState(device);
        if (start is not (VfioMigrationState.Running or VfioMigrationState.Stop))
            throw new VfioRuleException("WrongStateForSave", $"{device.Name} is in {MigrationFsm.Name(start)}; a save starts from RUNNING or STOP.");

        using var writer = new StateFile.Writer(path, device.Identity, 4096, replace);
        var engine = new MigrationEngine
        {
            Mode = EngineMode.Save, Source = device, Output = writer, MaxRounds = maxPreCopyRounds, ResumeSource = resume,
            Progress = progress, Cancel = cancel,
        };
        var r = engine.Run();
        r.ThrowIfNotCompleted();
        return new StateSaveResult
        {
            Device = device.Name, Path = writer.Path, Protocol = support.Protocol,
            PreCopyBytes = writer.PreCopyBytes, StopCopyBytes = writer.StopCopyBytes, PreCopyRounds = engine.Rounds,
            TotalTime = engine.TotalTime, Downtime = engine.Downtime, FinalState = r.Source!.State,
            StopAfterPointOfNoReturn = r.StopAfterPointOfNoReturn, HostKind = device.Host.Kind,
        };
    }

    /// <summary>
    /// Loads a state file into a device. The file is opened once and verified through that descriptor
    /// (checksums, trailer, and that it was saved from a device of the same kind) before the device moves
    /// to RESUMING; a corrupt, truncated or foreign file is refused with <see cref="VfioRuleException"/> and
    /// the device is left as it was. Then the verified chunks, each checked again as it is read, are
    /// written (v2: the data fd; v1: each transaction at data_offset, then data_size), the device leaves
    /// RESUMING (where the driver validates what it received) and ends in STOP, or RUNNING with
    /// <paramref name="resume"/>. A load that fails or is cancelled throws
    /// <see cref="MigrationFailedException"/> after the device was reset to where it started (where it
    /// supports reset; else it is named where it is).
    /// </summary>
    public static StateRestoreResult Restore(VfioDevice device, string path, bool resume = false,
        Action<MigrationProgress>? progress = null, CancellationToken cancel = default)
    {
        using var verified = StateFile.Open(path);
        var contents = verified.Contents;
        var support = device.Migration;
        string? mismatch = contents.Identity.Mismatch(device.Identity);
        if (mismatch is not null)
            throw new VfioRuleException("StateFileForeign", $"'{path}' was saved from {contents.Identity.Name} on {contents.Identity.Host} and cannot be loaded into {device.Name}: {mismatch}.");
        var start = DeviceMigration.GetState(device);
        if (start is not (VfioMigrationState.Running or VfioMigrationState.Stop))
            throw new VfioRuleException("WrongStateForRestore", $"{device.Name} is in {MigrationFsm.Name(start)}; a restore starts from RUNNING or STOP.");

        var engine = new MigrationEngine
        {
            Mode = EngineMode.Restore, Input = verified, Destination = device, RunDestination = resume, Progress = progress, Cancel = cancel,
        };
        var r = engine.Run();
        r.ThrowIfNotCompleted();
        return new StateRestoreResult
        {
            Device = device.Name, Path = Path.GetFullPath(path), Protocol = support.Protocol, Bytes = engine.PreCopyBytes + engine.StopCopyBytes,
            Chunks = contents.Chunks.Count, TotalTime = engine.TotalTime, FinalState = r.Destination!.State,
            StopAfterPointOfNoReturn = r.StopAfterPointOfNoReturn, HostKind = device.Host.Kind,
        };
    }
}
