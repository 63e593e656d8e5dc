using System;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// The v2 migration state machine of a device (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE): the core's
/// combination table (vfio_main.c vfio_from_fsm_table, state_flags_table, vfio_mig_get_next_state) and a
/// driver that steps through it one arc at a time as mtty_set_state / mtty_step_state do.
/// </summary>
internal sealed class SimMigrationV2
{
    private const uint STOP = VFIO_DEVICE_STATE_STOP, RUNNING = VFIO_DEVICE_STATE_RUNNING,
        STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY, RESUMING = VFIO_DEVICE_STATE_RESUMING,
        RUNNING_P2P = VFIO_DEVICE_STATE_RUNNING_P2P, PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY,
        PRE_COPY_P2P = VFIO_DEVICE_STATE_PRE_COPY_P2P, ERROR = VFIO_DEVICE_STATE_ERROR;

    /// <summary>vfio_from_fsm_table[cur][new]: the next state on the way from cur to new.</summary>
    private static readonly uint[,] FsmTable =
    {
        //            ERROR  STOP  RUNNING      STOP_COPY  RESUMING  RUNNING_P2P  PRE_COPY      PRE_COPY_P2P
        /* ERROR */ { ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR },
        /* STOP */ { ERROR, STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P },
        /* RUNNING */ { ERROR, RUNNING_P2P, RUNNING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, PRE_COPY, RUNNING_P2P },
        /* STOP_COPY */ { ERROR, STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR },
        /* RESUMING */ { ERROR, STOP, STOP, STOP, RESUMING, STOP, STOP, STOP },
        /* RUNNING_P2P */ { ERROR, STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P },
        /* PRE_COPY */ { ERROR, RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P },
        /* PRE_COPY_P2P */ { ERROR, RUNNING_P2P, RUNNING_P2P, STOP_COPY, RUNNING_P2P, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P },
    };

    /// <summary>state_flags_table: the migration flags a device must advertise for a state to exist (ERROR: never).</summary>
    private static readonly ulong[] StateFlags =
    {
        /* ERROR */ ~0UL,
        /* STOP */ VFIO_MIGRATION_STOP_COPY,
        /* RUNNING */ VFIO_MIGRATION_STOP_COPY,
        /* STOP_COPY */ VFIO_MIGRATION_STOP_COPY,
        /* RESUMING */ VFIO_MIGRATION_STOP_COPY,
        /* RUNNING_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
        /* PRE_COPY */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
        /* PRE_COPY_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
    };

    private readonly SimDevice _device;

    // Stop-copy streams begun so far (SimDefect.SaveNotRepeatable writes the count into each one).
    private ulong _stopCopyStreams;

    public SimMigrationV2(SimDevice device, ulong flags)
    {
        _device = device;
        Flags = flags;
    }

    /// <summary>VFIO_DEVICE_FEATURE_MIGRATION flags.</summary>
    public ulong Flags { get; }

    /// <summary>The current enum vfio_device_mig_state.</summary>
    public uint State { get; private set; } = RUNNING;

    /// <summary>The session of the saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY), if any.</summary>
    public SimSaveSession? Saving { get; private set; }

    /// <summary>The RESUMING session, if any.</summary>
    public SimResumeSession? Resuming { get; private set; }

    /// <summary>The device runs (its workload changes state and memory) in these states.</summary>
    public bool IsRunning => State is RUNNING or RUNNING_P2P or PRE_COPY or PRE_COPY_P2P;

    /// <summary>True if the device's flags make <paramref name="state"/> exist.</summary>
    public bool Supports(uint state) => state < VFIO_DEVICE_STATE_NR && (StateFlags[state] & Flags) == StateFlags[state];

    /// <summary>
    /// vfio_mig_get_next_state: the next arc from cur toward new, skipping unsupported states; 0 or -EINVAL.
    /// The skip loop stops at ERROR as the fix "vfio: Terminate the skip loop on the ERROR sentinel" makes it:
    /// kernels with PRE_COPY (6.2+) but without that fix loop for ever (soft lockup) on a request whose path
    /// runs into ERROR (STOP_COPY → PRE_COPY(_P2P)) instead of failing; the UAPI documents EINVAL.
    /// </summary>
    public int NextState(uint cur, uint target, out uint next)
    {
        next = ERROR;
        if (!Supports(cur) || !Supports(target)) return -Errno.EINVAL;
        next = FsmTable[cur, target];
        while (next != ERROR && !Supports(next)) next = FsmTable[next, target];
        return next != ERROR ? 0 : -Errno.EINVAL;
    }

    /// <summary>
    /// MIG_DEVICE_STATE SET: walks the arcs to <paramref name="target"/>. Returns 0 or -errno; on an arc that
    /// opens a data session, <paramref name="dataFile"/> is the new fd's file. On failure the device stays
    /// where the failing arc started (or in ERROR after an injected fault).
    /// </summary>
    public int Set(uint target, out SimDataFile? dataFile)
    {
        dataFile = null;
        if (State == target) return 0;
        if (NextState(State, target, out _) < 0) return RefuseForbidden();
        // A driver without some arcs refuses the whole request before it moves (the device stays where it was).
        if (PathTakesArcTheDriverLacks(target)) return -Errno.EINVAL;
        return Walk(target, out dataFile);
    }

    /// <summary>
    /// A request the core refuses (the target does not exist for this device, or its path runs into ERROR):
    /// EINVAL and no change, as the clean driver answers, or as a defective one does.
    /// </summary>
    private int RefuseForbidden()
    {
        // From ERROR there is no path to STOP: the device stays in ERROR.
        if (_device.Has(SimDefect.ForbiddenArcChangesState) && NextState(State, STOP, out _) == 0) Set(STOP, out _);
        return _device.Has(SimDefect.WrongErrnoForbiddenArc) ? -Errno.EPERM : -Errno.EINVAL;
    }

    /// <summary>
    /// True if the path to <paramref name="target"/> takes an arc the device's driver lacks:
    /// RUNNING → STOP or RUNNING_P2P → STOP (SimDefect.MissingArc), or any arc into a P2P state
    /// (SimDefect.P2PClaimedButRefused).
    /// </summary>
    private bool PathTakesArcTheDriverLacks(uint target)
    {
        bool missingStop = _device.Has(SimDefect.MissingArc), refusesP2P = _device.Has(SimDefect.P2PClaimedButRefused);
        if (!missingStop && !refusesP2P) return false;
        for (uint cur = State; cur != target;)
        {
            // A path the core cannot complete is answered by the walk, as for a clean driver.
            if (NextState(cur, target, out uint next) < 0) return false;
            if (missingStop && next == STOP && cur is RUNNING or RUNNING_P2P) return true;
            if (refusesP2P && next is RUNNING_P2P or PRE_COPY_P2P) return true;
            cur = next;
        }
        return false;
    }

    /// <summary>The arcs from the current state to <paramref name="target"/>, one at a time, as mtty_set_state takes them.</summary>
    private int Walk(uint target, out SimDataFile? dataFile)
    {
        dataFile = null;
        while (State != target)
        {
            int rc = NextState(State, target, out uint next);
            if (rc < 0) return rc;
            if (next == target && _device.Kernel.Faults.TakeTransitionError(_device.Name, target))
            {
                // The device broke during the arc: it is in ERROR until VFIO_DEVICE_RESET.
                EndSessions();
                State = ERROR;
                return -Errno.EIO;
            }
            if (next == target && _device.Kernel.Faults.TakeTransitionRefusal(_device.Name, target) is int refused and not 0) return -refused;
            rc = Step(State, next, out var file);
            if (rc < 0) return rc;
            State = next;
            dataFile = file;
        }
        return 0;
    }

    /// <summary>VFIO_DEVICE_RESET, or a fresh open of a device whose driver starts it in RUNNING.</summary>
    public void Reset()
    {
        EndSessions();
        State = RUNNING;
    }

    /// <summary>mtty_disable_files: the data fds of the device answer ENODEV from now on.</summary>
    public void EndSessions()
    {
        Saving?.Disable();
        Saving = null;
        Resuming?.Disable();
        Resuming = null;
    }

    /// <summary>One arc, as mtty_step_state performs it.</summary>
    private int Step(uint cur, uint next, out SimDataFile? file)
    {
        file = null;
        switch ((cur, next))
        {
            // The device starts again from STOP: a driver that re-initialises its hardware here loses the state.
            case (STOP, RUNNING_P2P) or (STOP, RUNNING):
                if (_device.Has(SimDefect.StateLostOnStopToRunning)) _device.ReinitialiseState();
                return 0;

            // Arcs that only start or stop the device (or its P2P DMA).
            case (RUNNING, RUNNING_P2P) or (RUNNING_P2P, RUNNING) or (RUNNING_P2P, STOP)
                or (PRE_COPY, PRE_COPY_P2P) or (PRE_COPY_P2P, PRE_COPY) or (RUNNING, STOP):
                return 0;

            // RESUMING → STOP loads the state (a short or foreign stream fails the SET: EINVAL).
            case (RESUMING, STOP):
            {
                int rc = Resuming?.Load() ?? -Errno.EINVAL;
                if (rc < 0) return rc;
                EndSessions();
                return 0;
            }

            // Arcs that end the saving session.
            case (PRE_COPY, RUNNING) or (PRE_COPY_P2P, RUNNING_P2P) or (STOP_COPY, STOP):
                if (_device.Has(SimDefect.StaleDataFdReadable))
                {
                    // The driver forgets the session without disabling its file: the old fd stays readable.
                    Saving?.KeepReadableAfterEnd();
                    Saving = null;
                }
                else
                {
                    EndSessions();
                }
                // The UAPI returns no fd on this arc (data_fd -1); a defective driver hands out an empty one.
                if (cur == STOP_COPY && _device.Has(SimDefect.DataFdOnWrongArc))
                    file = new SimDataFile(_device, SimSaveSession.Empty(_device.StateImage));
                return 0;

            // Arcs that open a saving session and return its fd.
            case (RUNNING, PRE_COPY) or (RUNNING_P2P, PRE_COPY_P2P):
                Saving = SimSaveSession.StartPreCopy(_device.StateImage, _device.Workload.InitialBytes);
                file = new SimDataFile(_device, Saving);
                return 0;
            case (STOP, STOP_COPY):
                Saving = SimSaveSession.StartStopCopy(_device.StateImage, NextStreamCounter());
                file = new SimDataFile(_device, Saving);
                return 0;

            // The device stops; the pre-copy fd goes on with the rest of the stream (kernel-interface.md lab 9: data_fd -1).
            case (PRE_COPY_P2P, STOP_COPY) or (PRE_COPY, STOP_COPY):
                Saving?.EnterStopCopy(NextStreamCounter());
                return 0;

            case (STOP, RESUMING):
                Resuming = new SimResumeSession(_device.StateImage, _device.Workload.InitialBytes,
                    discard: _device.Has(SimDefect.ResumingAcceptsGarbage),
                    ignoredTrailer: _device.Has(SimDefect.SaveNotRepeatable) ? SimHostConfiguration.SaveCounterBytes : 0);
                file = new SimDataFile(_device, Resuming);
                return 0;

            default:
                // vfio_mig_get_next_state never yields another arc (mtty: WARN_ON, -EINVAL).
                return -Errno.EINVAL;
        }
    }

    /// <summary>The counter for a new stop-copy stream of a SimDefect.SaveNotRepeatable device (1, 2, ...); null for any other.</summary>
    private ulong? NextStreamCounter() => _device.Has(SimDefect.SaveNotRepeatable) ? ++_stopCopyStreams : null;
}
