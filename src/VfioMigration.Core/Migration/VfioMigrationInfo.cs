using System;
using System.Collections.Generic;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>What a device's migration driver reports now (Get-VfioMigrationInfo).</summary>
public sealed class VfioMigrationInfo
{
    public required string Device { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    /// <summary>STOP_COPY, P2P, PRE_COPY.</summary>
    public required IReadOnlyList<string> Flags { get; init; }

    public required VfioMigrationState State { get; init; }

    /// <summary>v1, in a saving state: pending_bytes.</summary>
    public ulong? PendingBytes { get; init; }

    /// <summary>v2, in PRE_COPY/PRE_COPY_P2P with the data session open: PRECOPY_INFO initial_bytes.</summary>
    public ulong? PrecopyInitialBytes { get; init; }

    /// <summary>v2, in PRE_COPY/PRE_COPY_P2P with the data session open: PRECOPY_INFO dirty_bytes.</summary>
    public ulong? PrecopyDirtyBytes { get; init; }

    /// <summary>v2: MIG_DATA_SIZE, the estimated bytes of stop-copy.</summary>
    public ulong? StopCopySize { get; init; }

    /// <summary>True while a data session (data fd) is open.</summary>
    public required bool DataSessionOpen { get; init; }

    public required HostKind HostKind { get; init; }

    public override string ToString() => $"{Device}: {MigrationFsm.Name(State)}";

    /// <summary>Reads the device's migration figures without changing its state.</summary>
    public static VfioMigrationInfo Read(VfioDevice device)
    {
        var support = device.Migration;
        var flags = MigrationFsm.FlagNames(support.Flags);
        DeviceMigration.RequireMigration(device);
        var state = DeviceMigration.GetState(device);
        ulong? pending = null, initial = null, dirty = null, stopCopy = null;
        if (support.Protocol == MigrationProtocol.V1)
        {
            // pending_bytes means something only while saving; reading it again has no side effect.
            if (state is VfioMigrationState.PreCopy or VfioMigrationState.StopCopy)
            {
                Span<byte> b = stackalloc byte[8];
                device.Host.Pread(device.Fd, b, (long)support.V1Region!.Offset + 8, "pread(pending_bytes)");
                pending = BitConverter.ToUInt64(b);
            }
        }
        else
        {
            stopCopy = device.GetStopCopySize();
            if (device.DataFd is { } fd && state is VfioMigrationState.PreCopy or VfioMigrationState.PreCopyP2P)
            {
                var info = StructBytes.Buffer(new vfio_precopy_info { argsz = (uint)StructBytes.SizeOf<vfio_precopy_info>() });
                device.Host.Ioctl(fd, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO, info);
                var p = StructBytes.Read<vfio_precopy_info>(info);
                (initial, dirty) = (p.initial_bytes, p.dirty_bytes);
            }
        }
        return new VfioMigrationInfo
        {
            Device = device.Name,
            Protocol = support.Protocol,
            Flags = flags == "none" ? Array.Empty<string>() : flags.Split('|'),
            State = state,
            PendingBytes = pending,
            PrecopyInitialBytes = initial,
            PrecopyDirtyBytes = dirty,
            StopCopySize = stopCopy,
            DataSessionOpen = device.DataFd is not null,
            HostKind = device.Host.Kind,
        };
    }
}

/// <summary>A device's migration state, as Get-VfioMigrationState shows it.</summary>
public sealed class DeviceMigrationState
{
    public required string Device { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    public required VfioMigrationState State { get; init; }

    /// <summary>True while a data session (data fd) is open.</summary>
    public required bool DataSessionOpen { get; init; }

    public required HostKind HostKind { get; init; }

    public override string ToString() => $"{Device}: {MigrationFsm.Name(State)}";

    public static DeviceMigrationState Read(VfioDevice device) => new()
    {
        Device = device.Name,
        Protocol = device.Migration.Protocol,
        State = DeviceMigration.GetState(device),
        DataSessionOpen = device.DataFd is not null,
        HostKind = device.Host.Kind,
    };
}
