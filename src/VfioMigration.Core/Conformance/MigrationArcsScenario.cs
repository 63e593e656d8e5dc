using System.Globalization;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Conformance.DeviceScenarioCalls;
using static VfioMigration.Core.Conformance.MttyScenarioCalls;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// Every arc of the v2 state machine asked of the kernel directly: for each pair of states the mtty has
/// (all but ERROR), the device is reset to RUNNING, brought to the first state, and asked for the second
/// in one SET. The answer (0 or EINVAL), whether a data fd came back, and the state the device is in
/// afterwards are recorded. The kernel steps through vfio_mig_get_next_state's table; the module's planner
/// (MigrationFsm) replicates it and a test compares the two on these answers. A device that starts in
/// RESUMING gets a whole saved stream first, so that its way out (through STOP, the load) is the table's
/// and not a refused load. ERROR is never requested: it is not an arc.
/// </summary>
public sealed class MigrationArcsScenario : ConformanceScenario
{
    private static readonly VfioMigrationState[] s_states =
    {
        VfioMigrationState.Stop, VfioMigrationState.Running, VfioMigrationState.StopCopy, VfioMigrationState.Resuming,
        VfioMigrationState.RunningP2P, VfioMigrationState.PreCopy, VfioMigrationState.PreCopyP2P,
    };

    public override string Name => "migration-v2-arcs";

    public override bool AppliesTo(ConformanceTarget target) => target.MdevGroup is not null && target.MdevDevice is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        using var opened = OpenDevice(host, target.MdevGroup!.Value, target.MdevDevice!, r);
        if (opened.Device is { } device) Arcs(host, device, r);
    }

    /// <summary>The step name of the arc from <paramref name="from"/> to <paramref name="to"/> ("RUNNING -> PRE_COPY").</summary>
    public static string ArcStep(VfioMigrationState from, VfioMigrationState to) => $"{MigrationFsm.Name(from)} -> {MigrationFsm.Name(to)}";

    private static void Arcs(VfioHost host, SafeFd device, ConformanceRecorder r)
    {
        var stream = SaveStopped(host, device, r, "the device's state");
        if (stream is null) return;
        foreach (var from in s_states)
        {
            foreach (var to in s_states)
            {
                string step = ArcStep(from, to);
                // mtty_reset: RUNNING, data fds ended, registers kept (mtty does not say VFIO_DEVICE_FLAGS_RESET, but answers it).
                int reset = host.TryIoctlValue(device, VfioIoctl.VFIO_DEVICE_RESET, 0);
                if (reset != 0) r.Record($"{step}: RESET", ConformanceRecorder.Answer(reset));
                using var start = Set(host, device, r, step, from, record: false);
                if (from == VfioMigrationState.Resuming && start is not null)
                {
                    long n = host.TryWrite(start, stream);
                    if (n != stream.Length) r.Record($"{step}: write the stream", ConformanceRecorder.Answer(n));
                }
                if (State(host, device) != MigrationFsm.Name(from)) r.Record($"{step}: could not reach {MigrationFsm.Name(from)}", State(host, device));
                using var arc = Set(host, device, r, step, to);
                r.Record($"{step}: state", State(host, device));
            }
        }
        int last = host.TryIoctlValue(device, VfioIoctl.VFIO_DEVICE_RESET, 0);
        r.Record("RESET at the end", ConformanceRecorder.Answer(last));
        r.Record("state at the end", State(host, device));
        r.Record("arcs asked", (s_states.Length * s_states.Length).ToString(CultureInfo.InvariantCulture));
    }
}
