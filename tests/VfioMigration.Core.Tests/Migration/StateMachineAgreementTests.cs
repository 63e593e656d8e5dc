using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Migration;

/// <summary>
/// The module's path planner (MigrationFsm, what -WhatIf shows) and the simulator's model of the kernel
/// (SimMigrationV2, vfio_mig_get_next_state) are written apart on purpose: one is the module, the other
/// models the kernel. They must agree for every pair of states under every set of flags the kernel defines.
/// </summary>
public class StateMachineAgreementTests
{
    public static IEnumerable<object[]> FlagSets() => new[]
    {
        VFIO_MIGRATION_STOP_COPY,
        VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
        VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
        VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
    }.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(FlagSets))]
    public void ThePlannerAndTheSimulatedKernelTakeTheSamePathOrBothRefuse(ulong flags)
    {
        var kernel = new SimMigrationV2(null!, flags);   // NextState reads only the flags and the table
        int compared = 0;
        for (uint from = 0; from < VFIO_DEVICE_STATE_NR; from++)
        {
            for (uint to = 0; to < VFIO_DEVICE_STATE_NR; to++)
            {
                IReadOnlyList<VfioMigrationState>? planned;
                try { planned = MigrationFsm.Path((VfioMigrationState)from, (VfioMigrationState)to, flags); }
                catch (VfioRuleException) { planned = null; }

                var walked = new List<VfioMigrationState>();
                uint at = from;
                bool refused = false;
                while (at != to)
                {
                    if (kernel.NextState(at, to, out uint next) < 0) { refused = true; break; }
                    walked.Add((VfioMigrationState)next);
                    at = next;
                    Assert.True(walked.Count <= 8, $"the simulated kernel loops from {from} to {to}");
                }
                // The kernel refuses a request from or to a state the device lacks, ERROR included.
                if (from == to && !kernel.Supports(from)) refused = true;

                string pair = $"{MigrationFsm.Name((VfioMigrationState)from)} -> {MigrationFsm.Name((VfioMigrationState)to)} with flags {MigrationFsm.FlagNames(flags)}";
                Assert.True(refused == (planned is null), $"{pair}: the planner {(planned is null ? "refuses" : "accepts")}, the simulated kernel {(refused ? "refuses" : "accepts")}");
                if (planned is not null) Assert.True(planned.SequenceEqual(walked), $"{pair}: planner {string.Join(",", planned)} vs kernel {string.Join(",", walked)}");
                compared++;
            }
        }
        Assert.Equal(64, compared);
    }

    /// <summary>
    /// The third way: the real kernel, asked every arc on mtty (STOP_COPY|P2P|PRE_COPY) by the lab's
    /// migration-v2-arcs scenario (its answers in Conformance/Expected). Where the kernel accepted, the
    /// planner has a path, and a data fd came back exactly when the path's last arc opens a data session;
    /// where it answered EINVAL, the planner refuses. The simulator gives the same answers (the scenario
    /// is compared in the lab and in SimulatedConformanceTests).
    /// </summary>
    [Fact]
    public void ThePlannerAgreesWithTheRealKernelOnEveryArcTheLabAsked()
    {
        const ulong mtty = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
        var names = Enum.GetValues<VfioMigrationState>().ToDictionary(MigrationFsm.Name);
        int compared = 0;
        foreach (var o in Conformance.ExpectedAnswers.Load("migration-v2-arcs"))
        {
            // "RUNNING -> PRE_COPY: SET PRE_COPY | 0, data_fd fd"
            int arrow = o.Step.IndexOf(" -> ", StringComparison.Ordinal), colon = o.Step.IndexOf(": SET ", StringComparison.Ordinal);
            if (arrow < 0 || colon < 0) continue;
            var from = names[o.Step[..arrow]];
            var to = names[o.Step[(arrow + 4)..colon]];
            IReadOnlyList<VfioMigrationState>? planned;
            try { planned = MigrationFsm.Path(from, to, mtty); }
            catch (VfioRuleException) { planned = null; }
            if (o.Answer == "EINVAL")
            {
                Assert.True(planned is null, $"{o.Step}: the kernel answered EINVAL, the planner would go {string.Join(",", planned ?? Array.Empty<VfioMigrationState>())}");
            }
            else
            {
                Assert.True(planned is not null, $"{o.Step}: the kernel answered '{o.Answer}', the planner refuses");
                bool opens = planned!.Count > 0 && MigrationFsm.OpensDataFd(planned.Count > 1 ? planned[^2] : from, planned[^1]);
                Assert.Equal(opens ? "0, data_fd fd" : "0, data_fd -1", o.Answer);
            }
            compared++;
        }
        Assert.Equal(49, compared);
    }
}
