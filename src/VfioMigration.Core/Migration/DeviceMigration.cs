using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>What migration a device supports, as probed through its descriptor.</summary>
public sealed class MigrationSupport
{
    public required MigrationProtocol Protocol { get; init; }

    /// <summary>v2: VFIO_MIGRATION_* flags; v1: STOP_COPY|PRE_COPY (the 5.8 protocol always has both); none: 0.</summary>
    public required ulong Flags { get; init; }

    /// <summary>v1: the migration region (type 3 / subtype 1).</summary>
    public VfioRegion? V1Region { get; init; }

    internal static MigrationSupport Probe(VfioDevice device)
    {
        ulong? flags = device.GetMigrationFlags();
        if (flags is { } f) return new MigrationSupport { Protocol = MigrationProtocol.V2, Flags = f };
        var info = device.GetInfo();
        var region = device.GetRegions(info.num_regions).FirstOrDefault(r => r.Name == "Migration");
        if (region is not null)
        {
            return new MigrationSupport
            {
                Protocol = MigrationProtocol.V1,
                // The 5.8 protocol: pre-copy (RUNNING|SAVING) and stop-and-copy are part of every v1 device.
                Flags = VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_PRE_COPY,
                V1Region = region,
            };
        }
        return new MigrationSupport { Protocol = MigrationProtocol.None, Flags = 0 };
    }
}

/// <summary>One arc of a migration-state change, as Set-VfioMigrationState reports it.</summary>
public sealed class MigrationStep
{
    public required string Device { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    /// <summary>1-based position of the arc in the change.</summary>
    public required int Arc { get; init; }

    public required int Arcs { get; init; }

    public required VfioMigrationState From { get; init; }

    public required VfioMigrationState To { get; init; }

    /// <summary>How long the kernel took for the arc.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>True if the arc opened a migration data session (the kernel returned a data fd).</summary>
    public required bool DataFdOpened { get; init; }

    public required HostKind HostKind { get; init; }

    public override string ToString() => $"{MigrationFsm.Name(From)} -> {MigrationFsm.Name(To)}";
}

/// <summary>A migration-state change that failed: where the device stopped, and what it needs now.</summary>
public sealed class MigrationTransitionException : InvalidOperationException
{
    public MigrationTransitionException(string message, string device, VfioMigrationState from, VfioMigrationState to, VfioMigrationState stoppedAt, IReadOnlyList<MigrationStep> completed, Exception inner)
        : base(message, inner)
    {
        Device = device;
        From = from;
        To = to;
        StoppedAt = stoppedAt;
        Completed = completed;
    }

    public string Device { get; }

    /// <summary>The arc that failed.</summary>
    public VfioMigrationState From { get; }

    public VfioMigrationState To { get; }

    /// <summary>The state read back after the failure (ERROR needs a reset).</summary>
    public VfioMigrationState StoppedAt { get; }

    /// <summary>Arcs done before (and, with a recovery state, after) the failure.</summary>
    public IReadOnlyList<MigrationStep> Completed { get; }
}

/// <summary>Reads and changes a device's migration state, v2 and v1 alike.</summary>
public static class DeviceMigration
{
    /// <summary>The device's current migration state.</summary>
    public static VfioMigrationState GetState(VfioDevice device)
    {
        var support = RequireMigration(device);
        if (support.Protocol == MigrationProtocol.V1) return MigrationV1States.FromBits(ReadV1DeviceState(device, support));
        Span<byte> payload = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_mig_state>()];
        int rc = device.TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VfioConstants.VFIO_DEVICE_FEATURE_GET, payload);
        if (rc < 0) throw new VfioNativeException("VFIO_DEVICE_FEATURE(GET MIG_DEVICE_STATE)", -rc, device.Name);
        return (VfioMigrationState)StructBytes.Read<vfio_device_feature_mig_state>(payload).device_state;
    }

    /// <summary>The arcs a change would take (what -WhatIf shows), checked against the kernel's rules.</summary>
    public static IReadOnlyList<VfioMigrationState> Plan(VfioDevice device, VfioMigrationState target) => Plan(device, target, out _);

    /// <summary><see cref="Plan(VfioDevice, VfioMigrationState)"/>, also giving the state it planned from.</summary>
    public static IReadOnlyList<VfioMigrationState> Plan(VfioDevice device, VfioMigrationState target, out VfioMigrationState current)
    {
        var support = RequireMigration(device);
        current = GetState(device);
        if (support.Protocol == MigrationProtocol.V1)
        {
            if (current == VfioMigrationState.Error)
                throw new VfioRuleException("DeviceInError", $"{device.Name} is in the v1 error state (SAVING|RESUMING): only a reset (Reset-VfioDevice) brings it back to RUNNING.");
            MigrationV1States.Bits(target);
            return current == target ? Array.Empty<VfioMigrationState>() : new[] { target };
        }
        return MigrationFsm.Path(current, target, support.Flags);
    }

    /// <summary>
    /// Moves the device to <paramref name="target"/> one arc at a time (one SET per arc, so each arc is
    /// timed and its data fd seen). If an arc fails, the state is read back; with
    /// <paramref name="recovery"/> the device is then moved there (unless it fell into ERROR), and a
    /// <see cref="MigrationTransitionException"/> says where it stopped.
    /// </summary>
    public static IReadOnlyList<MigrationStep> SetState(VfioDevice device, VfioMigrationState target, VfioMigrationState? recovery = null)
    {
        var path = Plan(device, target, out var at);
        var done = new List<MigrationStep>();
        for (int i = 0; i < path.Count; i++)
        {
            try
            {
                done.Add(Arc(device, at, path[i], i + 1, path.Count));
                at = path[i];
            }
            catch (VfioNativeException e)
            {
                var stoppedAt = SafeGetState(device) ?? VfioMigrationState.Error;
                string need = stoppedAt == VfioMigrationState.Error ? " It fell into ERROR: reset it (Reset-VfioDevice) to bring it back to RUNNING." : "";
                if (recovery is { } r && stoppedAt != VfioMigrationState.Error && stoppedAt != r)
                {
                    try
                    {
                        var back = Plan(device, r);
                        var from = stoppedAt;
                        for (int k = 0; k < back.Count; k++)
                        {
                            done.Add(Arc(device, from, back[k], k + 1, back.Count));
                            from = back[k];
                        }
                        stoppedAt = from;
                        need = $" It was moved to the recovery state {MigrationFsm.Name(r)}.";
                    }
                    catch (Exception again) when (again is VfioNativeException or VfioRuleException)
                    {
                        stoppedAt = SafeGetState(device) ?? VfioMigrationState.Error;
                        need = $" Moving it to the recovery state {MigrationFsm.Name(r)} failed too ({again.Message}).";
                    }
                }
                throw new MigrationTransitionException(
                    $"{device.Name}: the arc {MigrationFsm.Name(at)} -> {MigrationFsm.Name(path[i])} failed ({e.ErrnoName}); the device is now in {MigrationFsm.Name(stoppedAt)}.{need}",
                    device.Name, at, path[i], stoppedAt, done, e);
            }
        }
        return done;
    }

    /// <summary>VFIO_DEVICE_RESET: leaves ERROR (v2) or the v1 error state; ends data sessions.</summary>
    public static void Reset(VfioDevice device)
    {
        device.Reset();
        device.DataFd?.Dispose();
        device.DataFd = null;
    }

    private static VfioMigrationState? SafeGetState(VfioDevice device)
    {
        try { return GetState(device); }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException) { return null; }
    }

    private static MigrationStep Arc(VfioDevice device, VfioMigrationState from, VfioMigrationState to, int arc, int arcs)
    {
        var support = device.Migration;
        var clock = Stopwatch.StartNew();
        bool opened = false;
        if (support.Protocol == MigrationProtocol.V1)
        {
            WriteV1DeviceState(device, support, MigrationV1States.Bits(to));
        }
        else
        {
            Span<byte> payload = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_mig_state>()];
            StructBytes.Write(payload, new vfio_device_feature_mig_state { device_state = (uint)to, data_fd = -1 });
            int rc = device.TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VfioConstants.VFIO_DEVICE_FEATURE_SET, payload,
                $"SET MIG_DEVICE_STATE {MigrationFsm.Name(from)} -> {MigrationFsm.Name(to)}");
            if (rc < 0) throw new VfioNativeException("VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE)", -rc, device.Name, $"{MigrationFsm.Name(from)} -> {MigrationFsm.Name(to)}");
            int fd = StructBytes.Read<vfio_device_feature_mig_state>(payload).data_fd;
            if (fd >= 0)
            {
                device.DataFd?.Dispose();
                device.DataFd = device.Host.Adopt(fd, $"data fd of {device.Name}");
                opened = true;
            }
            else if (EndsSession(to))
            {
                // STOP, RUNNING and RUNNING_P2P end a data session: its descriptor is no longer useful.
                device.DataFd?.Dispose();
                device.DataFd = null;
            }
        }
        clock.Stop();
        return new MigrationStep
        {
            Device = device.Name, Protocol = support.Protocol, Arc = arc, Arcs = arcs, From = from, To = to,
            Duration = clock.Elapsed, DataFdOpened = opened, HostKind = device.Host.Kind,
        };
    }

    private static bool EndsSession(VfioMigrationState to) =>
        to is VfioMigrationState.Stop or VfioMigrationState.Running or VfioMigrationState.RunningP2P;

    internal static MigrationSupport RequireMigration(VfioDevice device)
    {
        var support = device.Migration;
        if (support.Protocol == MigrationProtocol.None)
            throw new VfioRuleException("NoMigrationSupport", $"{device.Name} has no migration driver: VFIO_DEVICE_FEATURE MIGRATION answers ENOTTY and it has no v1 migration region.");
        return support;
    }

    /// <summary>v1: device_state, read at its natural width (4 bytes) at the start of the migration region.</summary>
    internal static uint ReadV1DeviceState(VfioDevice device, MigrationSupport support)
    {
        Span<byte> b = stackalloc byte[4];
        device.Host.Pread(device.Fd, b, (long)support.V1Region!.Offset, "pread(device_state)");
        return BitConverter.ToUInt32(b);
    }

    /// <summary>v1: read-modify-write of device_state keeping the reserved bits (kernel-interface.md a.4).</summary>
    private static void WriteV1DeviceState(VfioDevice device, MigrationSupport support, uint bits)
    {
        if (!VfioConstants.VFIO_DEVICE_STATE_VALID(bits))
            throw new VfioRuleException("InvalidDeviceState", $"device_state 0x{bits:x} is not valid (VFIO_DEVICE_STATE_VALID).");
        uint old = ReadV1DeviceState(device, support);
        uint value = (old & ~VfioConstants.VFIO_DEVICE_STATE_MASK) | bits;
        Span<byte> b = stackalloc byte[4];
        BitConverter.TryWriteBytes(b, value);
        device.Host.Pwrite(device.Fd, b, (long)support.V1Region!.Offset, "pwrite(device_state)");
    }
}
