using System;
using System.IO;
using System.Linq;
using System.Threading;
using VfioMigration.Core;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;
using Xunit;
using S = VfioMigration.Core.Migration.VfioMigrationState;

namespace VfioMigration.Core.Tests.Migration;

/// <summary>Start-VfioMigration underneath: convergence, switchover, the report, and what is left on failure.</summary>
public sealed class MigrationRunnerTests : IDisposable
{
    private const string Src = "36e5c7cc-4871-4d03-91da-44479a60a911";
    private const string Dst = "36e5c7cc-4871-4d03-91da-44479a60a912";
    private const string Busy = "0b3c0e1e-8f39-4a2e-9a54-00000000000b";
    private const string BusyDst = "0b3c0e1e-8f39-4a2e-9a54-00000000000c";
    private const string Edu = "0000:00:02.0";
    private const string V1Src = "5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51";
    private const string V1Dst = "5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52";
    private readonly SimulatedKernel _kernel;
    private readonly VfioContainer _container;
    private readonly string _dir = Directory.CreateTempSubdirectory("vfiomig-run").FullName;

    public MigrationRunnerTests()
    {
        var config = new SimHostConfiguration { Name = "runner tests" };
        // mtty for the quiet pair; a vGPU-like mdev where the state must change by itself (mtty's does not).
        SimDeviceConfig Mdev(string name, SimWorkload w, bool mtty = true) => new()
        {
            Name = name, Bus = SimBus.Mdev, MdevType = mtty ? "mtty-2" : "vgpu-t", Driver = mtty ? "mtty" : "vgpu", Migration = SimMigrationProtocol.V2,
            MigrationFlags = VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P | VfioConstants.VFIO_MIGRATION_PRE_COPY,
            Workload = w,
        };
        config.Groups.Add(new SimGroupConfig { Number = 7, Devices = { Mdev(Src, new SimWorkload { StateSize = 96, InitialBytes = 24 }) } });
        config.Groups.Add(new SimGroupConfig { Number = 8, Devices = { Mdev(Dst, new SimWorkload { StateSize = 96, InitialBytes = 24 }) } });
        // Dirties its state at 4 MiB/s: faster than a 1 MiB/s link drains it.
        config.Groups.Add(new SimGroupConfig { Number = 9, Devices = { Mdev(Busy, new SimWorkload { StateSize = 1 << 20, InitialBytes = 64 << 10, StateDirtyBytesPerSecond = 4 << 20, Seed = 9 }, mtty: false) } });
        config.Groups.Add(new SimGroupConfig { Number = 10, Devices = { Mdev(BusyDst, new SimWorkload { StateSize = 1 << 20, InitialBytes = 64 << 10, Seed = 10 }, mtty: false) } });
        config.Groups.Add(new SimGroupConfig { Number = 2, Devices = { new SimDeviceConfig { Name = Edu, Bus = SimBus.Pci } } });
        foreach (var (n, g) in new[] { (V1Src, 12), (V1Dst, 13) })
            config.Groups.Add(new SimGroupConfig { Number = g, Devices = { new SimDeviceConfig { Name = n, Bus = SimBus.Mdev, MdevType = "vgpu-v1", Driver = "vgpu", Migration = SimMigrationProtocol.V1, Workload = new SimWorkload { StateSize = 2 << 20, InitialBytes = 1 << 20, Seed = g } } } });
        _kernel = new SimulatedKernel(config);
        _container = VfioContainer.Open(new VfioHost(_kernel));
        foreach (int g in new[] { 7, 8, 9, 10, 12, 13 }) _container.Attach(g);
        _container.SetIommu();
    }

    public void Dispose()
    {
        _container.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void AQuietDeviceConvergesSwitchesOverAndTheDestinationRunsItsState()
    {
        var src = _container.GetDevice(Src);
        var dst = _container.GetDevice(Dst);
        var r = MigrationRunner.Run(src, dst, null, new MigrationOptions());
        Assert.Equal(MigrationStatus.Completed, r.Status);
        Assert.Equal(1, r.Iterations);
        Assert.Equal((24UL, 72UL), (r.PrecopyBytes, r.StopCopyBytes));
        Assert.Equal((S.Stop, S.Running), (r.SourceState, r.DestinationState!.Value));
        Assert.True(r.Downtime > TimeSpan.Zero && r.Downtime <= r.TotalTime);
        Assert.Equal(_kernel.FindDevice(Src)!.GetStateBytes(), _kernel.FindDevice(Dst)!.GetStateBytes());
    }

    [Fact]
    public void AV1DeviceMigratesTransactionByTransactionIntoItsTwin()
    {
        var r = MigrationRunner.Run(_container.GetDevice(V1Src), _container.GetDevice(V1Dst), null, new MigrationOptions { Bandwidth = 1UL << 30 });
        Assert.Equal(MigrationStatus.Completed, r.Status);
        Assert.Equal(MigrationProtocol.V1, r.Protocol);
        Assert.Equal((ulong)(2 << 20), r.PrecopyBytes + r.StopCopyBytes);
        Assert.True(r.PrecopyBytes > 0);
        Assert.Equal((S.Stop, S.Running), (r.SourceState, r.DestinationState!.Value));
        Assert.Equal(_kernel.FindDevice(V1Src)!.GetStateBytes(), _kernel.FindDevice(V1Dst)!.GetStateBytes());
    }

    [Fact]
    public void GuestMemoryOfAContainerCountsInWhatRemainsAndIsSent()
    {
        // An IOMMU-backed container: every mapped page reads dirty on every read, 4 MiB of them.
        using var guest = VfioContainer.Open(new VfioHost(_kernel));
        guest.Attach(2);
        guest.SetIommu();
        guest.Map(0x10000000, 4 << 20);
        guest.StartDirtyTracking();
        var opts = new MigrationOptions { Container = guest, Bandwidth = 64UL << 20, MaxIterations = 2, DowntimeLimit = TimeSpan.FromMilliseconds(10) };
        var r = MigrationRunner.Run(_container.GetDevice(Src), _container.GetDevice(Dst), null, opts);
        // 4 MiB of guest memory stays dirty: more than 64 MiB/s x 10 ms, so it never converges.
        Assert.Equal(MigrationStatus.NotConverged, r.Status);
        Assert.All(r.IterationDetails, i => Assert.Equal(1024UL, i.GuestDirtyPages));
        Assert.Equal(2UL * (4 << 20), r.GuestBytes);
        var fast = MigrationRunner.Run(_container.GetDevice(Src), _container.GetDevice(Dst), null, new MigrationOptions { Container = guest, Bandwidth = 1UL << 30 });
        Assert.Equal(MigrationStatus.Completed, fast.Status);
        Assert.True(fast.GuestBytes >= 4UL << 20);
    }

    [Fact]
    public void ProgressInTheFirstRoundCountsTheGuestStillToSendAndNeverClaimsNothingRemains()
    {
        using var guest = VfioContainer.Open(new VfioHost(_kernel));
        guest.Attach(2);
        guest.SetIommu();
        guest.Map(0x10000000, 4 << 20);
        guest.StartDirtyTracking();
        var reports = new System.Collections.Generic.List<MigrationProgress>();
        var r = MigrationRunner.Run(_container.GetDevice(Src), _container.GetDevice(Dst), null,
            new MigrationOptions { Container = guest, Bandwidth = 1UL << 30 }, reports.Add);
        Assert.Equal(MigrationStatus.Completed, r.Status);
        var firstRound = reports.Where(p => p.Step == "pre-copy round 1" && p.Phase == MigrationPhase.PreCopy).ToList();
        Assert.NotEmpty(firstRound);
        // While the device's pre-copy data is read, the guest's 4 MiB are still to go.
        Assert.All(firstRound, p => Assert.True(p.Pending >= 4UL << 20, $"round 1 said {p.Pending} bytes remain"));
        // Once the round has sent the guest's pages, what remains is what the next read found dirty and the
        // device's stop-copy data.
        Assert.True(firstRound[^1].Pending >= r.IterationDetails[0].RemainingBytes + 72);

        // Without guest memory the round's last word still counts the device's stop-copy data (MIG_DATA_SIZE).
        reports.Clear();
        r = MigrationRunner.Run(_container.GetDevice(Dst), _container.GetDevice(Src), null, new MigrationOptions(), reports.Add);
        Assert.Equal(MigrationStatus.Completed, r.Status);
        Assert.True(reports.Last(p => p.Phase == MigrationPhase.PreCopy).Pending >= r.StopCopyBytes);
        Assert.True(r.StopCopyBytes > 0);
    }

    [Fact]
    public void AContainerThatIsNotTrackingIsRefused()
    {
        using var guest = VfioContainer.Open(new VfioHost(_kernel));
        guest.Attach(2);
        guest.SetIommu();
        Assert.Equal("TrackingNotStarted", Assert.Throws<VfioRuleException>(() =>
            MigrationRunner.Run(_container.GetDevice(Src), _container.GetDevice(Dst), null, new MigrationOptions { Container = guest })).RuleId);
    }

    [Fact]
    public void ADeviceThatDirtiesFasterThanTheLinkStopsAtMaxIterationsNotConvergedAndKeepsRunning()
    {
        var src = _container.GetDevice(Busy);
        var dst = _container.GetDevice(BusyDst);
        var r = MigrationRunner.Run(src, dst, null, new MigrationOptions { MaxIterations = 3, Bandwidth = 1 << 20 });
        Assert.Equal(MigrationStatus.NotConverged, r.Status);
        Assert.Equal(3, r.Iterations);
        Assert.Contains("did not converge", r.ErrorDescription);
        Assert.True(r.IterationDetails[^1].RemainingBytes > r.IterationDetails[0].RemainingBytes, "what remains grows: the device outruns the link");
        Assert.All(r.IterationDetails, i => Assert.True(i.DirtyRateMiBps > 1, $"iteration {i.Iteration} dirtied {i.DirtyRateMiBps} MiB/s"));
        Assert.Equal(S.Running, r.SourceState);
        Assert.Equal(S.Running, r.DestinationState);  // reset out of its half-filled RESUMING
        Assert.Equal(TimeSpan.Zero, r.Downtime);
    }

    [Fact]
    public void ThatDeviceConvergesWhenTheLinkIsFastEnough()
    {
        var r = MigrationRunner.Run(_container.GetDevice(Busy), _container.GetDevice(BusyDst), null, new MigrationOptions { Bandwidth = 1UL << 30 });
        Assert.Equal(MigrationStatus.Completed, r.Status);
    }

    [Fact]
    public void MigratingIntoAFileWritesAStateFileThatRestores()
    {
        string path = Path.Combine(_dir, "m.state");
        var r = MigrationRunner.Run(_container.GetDevice(Src), null, path, new MigrationOptions());
        Assert.Equal(MigrationStatus.Completed, r.Status);
        Assert.Equal(96UL, StateFile.Verify(path).TotalBytes);
        Assert.Equal(S.Running, DeviceState.Restore(_container.GetDevice(Dst), path, resume: true).FinalState);
    }

    [Fact]
    public void ACancelledMigrationLeavesTheSourceRunningAndNoFile()
    {
        using var cancel = new CancellationTokenSource();
        string path = Path.Combine(_dir, "c.state");
        var r = MigrationRunner.Run(_container.GetDevice(Busy), null, path, new MigrationOptions { Bandwidth = 1 << 20 },
            p => { if (p.Moved > 0) cancel.Cancel(); }, cancel.Token);
        Assert.Equal(MigrationStatus.Cancelled, r.Status);
        Assert.Equal(S.Running, r.SourceState);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void AFailureAtSwitchoverIsReportedAndTheSourceRunsAgain()
    {
        _kernel.Faults.ErrorOnTransition(Dst, (uint)S.Stop);   // the destination rejects the stream it received
        var r = MigrationRunner.Run(_container.GetDevice(Src), _container.GetDevice(Dst), null, new MigrationOptions());
        Assert.Equal(MigrationStatus.Failed, r.Status);
        Assert.NotNull(r.ErrorDescription);
        Assert.Equal(S.Running, r.SourceState);
    }

    [Fact]
    public void ADestinationOfAnotherKindIsRefusedBeforeAnythingMoves()
    {
        using var other = VfioContainer.Open(new VfioHost(_kernel));
        other.Attach(2);
        other.SetIommu();
        var e = Assert.Throws<VfioRuleException>(() => MigrationRunner.Run(_container.GetDevice(Src), other.GetDevice(Edu), null, new MigrationOptions()));
        Assert.Equal("NoMigrationSupport", Assert.Throws<VfioRuleException>(() => DeviceMigration.GetState(other.GetDevice(Edu))).RuleId);
        Assert.Equal("DestinationMismatch", e.RuleId);
        Assert.Equal(S.Running, DeviceMigration.GetState(_container.GetDevice(Src)));
    }
}
