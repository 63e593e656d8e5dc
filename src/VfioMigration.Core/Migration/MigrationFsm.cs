using System;
using System.Collections.Generic;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Migration;

/// <summary>The migration states, named as enum vfio_device_mig_state (v2) names them; v1 devices map onto them.</summary>
public enum VfioMigrationState : uint
{
    Error = VfioConstants.VFIO_DEVICE_STATE_ERROR,
    Stop = VfioConstants.VFIO_DEVICE_STATE_STOP,
    Running = VfioConstants.VFIO_DEVICE_STATE_RUNNING,
    StopCopy = VfioConstants.VFIO_DEVICE_STATE_STOP_COPY,
    Resuming = VfioConstants.VFIO_DEVICE_STATE_RESUMING,
    RunningP2P = VfioConstants.VFIO_DEVICE_STATE_RUNNING_P2P,
    PreCopy = VfioConstants.VFIO_DEVICE_STATE_PRE_COPY,
    PreCopyP2P = VfioConstants.VFIO_DEVICE_STATE_PRE_COPY_P2P,
}

/// <summary>
/// The kernel's v2 migration state machine, replicated so the module can show (-WhatIf) and check the path
/// of a change before any ioctl: vfio_mig_get_next_state's table and its skipping of states the device
/// lacks (drivers/vfio/vfio_main.c; kernel-interface.md b.2).
/// </summary>
public static class MigrationFsm
{
    private const VfioMigrationState E = VfioMigrationState.Error, S = VfioMigrationState.Stop, R = VfioMigrationState.Running,
        SC = VfioMigrationState.StopCopy, RS = VfioMigrationState.Resuming, P2P = VfioMigrationState.RunningP2P,
        PC = VfioMigrationState.PreCopy, PCP = VfioMigrationState.PreCopyP2P;

    // vfio_from_fsm_table[cur][new]: the next state to step to. Rows and columns in enum order
    // ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P.
    private static readonly VfioMigrationState[,] s_next =
    {
        /* ERROR */        { E, E, E, E, E, E, E, E },
        /* STOP */         { E, S, P2P, SC, RS, P2P, P2P, P2P },
        /* RUNNING */      { E, P2P, R, P2P, P2P, P2P, PC, P2P },
        /* STOP_COPY */    { E, S, S, SC, S, S, E, E },
        /* RESUMING */     { E, S, S, S, RS, S, S, S },
        /* RUNNING_P2P */  { E, S, R, S, S, P2P, R, PCP },
        /* PRE_COPY */     { E, R, R, PCP, R, R, PC, PCP },
        /* PRE_COPY_P2P */ { E, P2P, P2P, SC, P2P, P2P, PC, PCP },
    };

    /// <summary>state_flags_table: the VFIO_MIGRATION_* flags a device must have for a state to exist.</summary>
    public static ulong RequiredFlags(VfioMigrationState state) => state switch
    {
        VfioMigrationState.Stop or VfioMigrationState.Running or VfioMigrationState.StopCopy or VfioMigrationState.Resuming => VfioConstants.VFIO_MIGRATION_STOP_COPY,
        VfioMigrationState.RunningP2P => VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P,
        VfioMigrationState.PreCopy => VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_PRE_COPY,
        VfioMigrationState.PreCopyP2P => VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P | VfioConstants.VFIO_MIGRATION_PRE_COPY,
        _ => ulong.MaxValue,
    };

    /// <summary>True if a device with <paramref name="flags"/> has the state.</summary>
    public static bool Supports(ulong flags, VfioMigrationState state) =>
        state != VfioMigrationState.Error && (flags & RequiredFlags(state)) == RequiredFlags(state);

    /// <summary>
    /// The states a device passes through from <paramref name="current"/> to <paramref name="target"/>
    /// (excluding <paramref name="current"/>), as the kernel steps it. Throws the kernel's refusal as a
    /// rule: an unsupported state, or a path that would run through ERROR (e.g. STOP_COPY → PRE_COPY).
    /// </summary>
    public static IReadOnlyList<VfioMigrationState> Path(VfioMigrationState current, VfioMigrationState target, ulong flags)
    {
        if (target == VfioMigrationState.Error)
            throw new VfioRuleException("StateNotRequestable", "ERROR is where a device falls when a transition fails; it cannot be requested. VFIO_DEVICE_RESET leaves it.");
        if (current == VfioMigrationState.Error)
            throw new VfioRuleException("DeviceInError", "the device is in ERROR: only a reset (VFIO_DEVICE_RESET) brings it back, to RUNNING.");
        if (!Supports(flags, current) || !Supports(flags, target))
        {
            var missing = !Supports(flags, target) ? target : current;
            throw new VfioRuleException("StateNotSupported",
                $"the device does not support {Name(missing)} (its migration flags are {FlagNames(flags)}; {Name(missing)} needs {FlagNames(RequiredFlags(missing))}).");
        }
        var path = new List<VfioMigrationState>();
        var at = current;
        while (at != target)
        {
            var next = s_next[(int)at, (int)target];
            // The kernel skips states the device lacks by stepping on from them toward the target.
            while (next != VfioMigrationState.Error && !Supports(flags, next)) next = s_next[(int)next, (int)target];
            if (next == VfioMigrationState.Error)
                throw new VfioRuleException("ArcNotAllowed",
                    $"the kernel allows no path from {Name(current)} to {Name(target)} (it would pass through ERROR; e.g. a device cannot go back from STOP_COPY to pre-copy).");
            path.Add(next);
            at = next;
            if (path.Count > 8) throw new InvalidOperationException("The state table loops; this is a bug.");
        }
        return path;
    }

    /// <summary>Arcs that open a data session: the kernel returns a new data fd on them.</summary>
    public static bool OpensDataFd(VfioMigrationState from, VfioMigrationState to) => (from, to) switch
    {
        (VfioMigrationState.Running, VfioMigrationState.PreCopy) => true,
        (VfioMigrationState.RunningP2P, VfioMigrationState.PreCopyP2P) => true,
        (VfioMigrationState.Stop, VfioMigrationState.StopCopy) => true,
        (VfioMigrationState.Stop, VfioMigrationState.Resuming) => true,
        _ => false,
    };

    /// <summary>The kernel's name of a state: RUNNING, PRE_COPY_P2P ...</summary>
    public static string Name(VfioMigrationState state) => state switch
    {
        VfioMigrationState.StopCopy => "STOP_COPY",
        VfioMigrationState.RunningP2P => "RUNNING_P2P",
        VfioMigrationState.PreCopy => "PRE_COPY",
        VfioMigrationState.PreCopyP2P => "PRE_COPY_P2P",
        _ => state.ToString().ToUpperInvariant(),
    };

    /// <summary>STOP_COPY|P2P|PRE_COPY names of migration flags.</summary>
    public static string FlagNames(ulong flags)
    {
        var names = new List<string>();
        if ((flags & VfioConstants.VFIO_MIGRATION_STOP_COPY) != 0) names.Add("STOP_COPY");
        if ((flags & VfioConstants.VFIO_MIGRATION_P2P) != 0) names.Add("P2P");
        if ((flags & VfioConstants.VFIO_MIGRATION_PRE_COPY) != 0) names.Add("PRE_COPY");
        return names.Count == 0 ? "none" : string.Join("|", names);
    }
}

/// <summary>
/// v1 (the 5.8 series' migration region): the states as device_state bits, checked against the
/// kernel's VFIO_DEVICE_STATE_VALID table.
/// </summary>
public static class MigrationV1States
{
    /// <summary>device_state bits of a state name.</summary>
    public static uint Bits(VfioMigrationState state) => state switch
    {
        VfioMigrationState.Running => VfioConstants.VFIO_DEVICE_STATE_V1_RUNNING,
        VfioMigrationState.PreCopy => VfioConstants.VFIO_DEVICE_STATE_V1_RUNNING | VfioConstants.VFIO_DEVICE_STATE_V1_SAVING,
        VfioMigrationState.StopCopy => VfioConstants.VFIO_DEVICE_STATE_V1_SAVING,
        VfioMigrationState.Stop => VfioConstants.VFIO_DEVICE_STATE_V1_STOP,
        VfioMigrationState.Resuming => VfioConstants.VFIO_DEVICE_STATE_V1_RESUMING,
        _ => throw new VfioRuleException("StateNotSupported", $"a v1 device has no {MigrationFsm.Name(state)} state (v1 has RUNNING, PRE_COPY, STOP_COPY, STOP, RESUMING)."),
    };

    /// <summary>The state name of device_state bits (the error state 6 is Error).</summary>
    public static VfioMigrationState FromBits(uint deviceState)
    {
        uint bits = deviceState & VfioConstants.VFIO_DEVICE_STATE_MASK;
        if (VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(bits)) return VfioMigrationState.Error;
        return bits switch
        {
            VfioConstants.VFIO_DEVICE_STATE_V1_RUNNING => VfioMigrationState.Running,
            VfioConstants.VFIO_DEVICE_STATE_V1_RUNNING | VfioConstants.VFIO_DEVICE_STATE_V1_SAVING => VfioMigrationState.PreCopy,
            VfioConstants.VFIO_DEVICE_STATE_V1_SAVING => VfioMigrationState.StopCopy,
            VfioConstants.VFIO_DEVICE_STATE_V1_STOP => VfioMigrationState.Stop,
            VfioConstants.VFIO_DEVICE_STATE_V1_RESUMING => VfioMigrationState.Resuming,
            _ => throw new VfioRuleException("InvalidDeviceState", $"device_state 0x{deviceState:x} is not a state of the v1 protocol (VFIO_DEVICE_STATE_VALID is false)."),
        };
    }
}
