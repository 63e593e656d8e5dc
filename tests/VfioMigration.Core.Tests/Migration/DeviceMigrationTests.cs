using System.Linq;
using VfioMigration.Core;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;
using Xunit;
using S = VfioMigration.Core.Migration.VfioMigrationState;

namespace VfioMigration.Core.Tests.Migration;

/// <summary>Stepped migration-state changes through the seam, on the simulated lab (mtty, v2) and a v1 device.</summary>
public class DeviceMigrationTests
{
    private static (SimulatedKernel Kernel, VfioContainer Container, VfioDevice Device) Mtty()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        var container = VfioContainer.Open(new VfioHost(kernel));
        container.Attach(7);
        container.SetIommu();
        return (kernel, container, container.GetDevice(SimTopologies.LabMttyUuid));
    }

    [Fact]
    public void EachArcIsOneStepAndTheDataFdAppearsWhereTheKernelReturnsOne()
    {
        var (_, container, mtty) = Mtty();
        using (container)
        {
            var pre = DeviceMigration.SetState(mtty, S.PreCopy);
            Assert.Equal(("RUNNING -> PRE_COPY", true), (Assert.Single(pre).ToString(), pre[0].DataFdOpened));
            var fd = mtty.DataFd;
            Assert.NotNull(fd);
            var stopCopy = DeviceMigration.SetState(mtty, S.StopCopy);
            Assert.Equal(new[] { "PRE_COPY -> PRE_COPY_P2P", "PRE_COPY_P2P -> STOP_COPY" }, stopCopy.Select(s => s.ToString()));
            Assert.All(stopCopy, s => Assert.False(s.DataFdOpened));
            Assert.Same(fd, mtty.DataFd);   // after PRE_COPY -> STOP_COPY the pre-copy fd goes on
            Assert.Equal(S.StopCopy, DeviceMigration.GetState(mtty));
            DeviceMigration.SetState(mtty, S.Stop);
            Assert.Null(mtty.DataFd);        // STOP ends the session
            Assert.Equal(new[] { 1, 2 }, DeviceMigration.SetState(mtty, S.Running).Select(s => s.Arc));
        }
    }

    [Fact]
    public void AFailedArcReportsWhereTheDeviceStoppedAndTheRecoveryStateIsReached()
    {
        var (kernel, container, mtty) = Mtty();
        using (container)
        {
            // The device rejects RUNNING_P2P -> STOP once; it stays in RUNNING_P2P, and recovery takes it back
            // to RUNNING. Calls from now: GET MIG_DEVICE_STATE, SET RUNNING_P2P, SET STOP (the 3rd fails).
            _ = mtty.Migration;
            kernel.Faults.FailIoctl("VFIO_DEVICE_FEATURE", 3, VfioMigration.Core.Native.Errno.EIO);
            var e = Assert.Throws<MigrationTransitionException>(() => DeviceMigration.SetState(mtty, S.Stop, recovery: S.Running));
            Assert.Equal((S.RunningP2P, S.Stop), (e.From, e.To));
            Assert.Equal(S.Running, e.StoppedAt);
            Assert.Contains("recovery state RUNNING", e.Message);
            Assert.Equal(S.Running, DeviceMigration.GetState(mtty));
        }
    }

    [Fact]
    public void ADeviceThatFallsIntoErrorNeedsAReset()
    {
        var (kernel, container, mtty) = Mtty();
        using (container)
        {
            kernel.Faults.ErrorOnTransition(SimTopologies.LabMttyUuid, (uint)S.PreCopy);
            var e = Assert.Throws<MigrationTransitionException>(() => DeviceMigration.SetState(mtty, S.PreCopy, recovery: S.Running));
            Assert.Equal(S.Error, e.StoppedAt);
            Assert.Contains("Reset-VfioDevice", e.Message);
            Assert.Equal("DeviceInError", Assert.Throws<VfioRuleException>(() => DeviceMigration.Plan(mtty, S.Running)).RuleId);
            DeviceMigration.Reset(mtty);
            Assert.Equal(S.Running, DeviceMigration.GetState(mtty));
        }
    }

    [Fact]
    public void PrecopyFiguresComeFromTheOpenSession()
    {
        var (_, container, mtty) = Mtty();
        using (container)
        {
            var running = VfioMigrationInfo.Read(mtty);
            Assert.Equal((MigrationProtocol.V2, 96UL, (ulong?)null), (running.Protocol, running.StopCopySize!.Value, running.PrecopyInitialBytes));
            DeviceMigration.SetState(mtty, S.PreCopy);
            var pre = VfioMigrationInfo.Read(mtty);
            Assert.Equal((24UL, 0UL, true), (pre.PrecopyInitialBytes!.Value, pre.PrecopyDirtyBytes!.Value, pre.DataSessionOpen));
            DeviceMigration.SetState(mtty, S.Running);
        }
    }

    [Fact]
    public void AV1DeviceUsesDeviceStateBitsAndThePendingBytesOfItsRegion()
    {
        var config = SimTopologies.Lab();
        config.Groups.Add(new SimGroupConfig
        {
            Number = 12,
            Devices = { new SimDeviceConfig { Name = "5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51", Bus = SimBus.Mdev, MdevType = "vgpu-v1", Migration = SimMigrationProtocol.V1, Workload = new SimWorkload { StateSize = 4096, InitialBytes = 1024 } } },
        });
        var kernel = new SimulatedKernel(config);
        using var container = VfioContainer.Open(new VfioHost(kernel));
        container.Attach(12);
        container.SetIommu();
        var v1 = container.GetDevice("5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51");
        Assert.Equal(MigrationProtocol.V1, v1.Migration.Protocol);
        Assert.Equal(S.Running, DeviceMigration.GetState(v1));
        Assert.Null(VfioMigrationInfo.Read(v1).PendingBytes);
        Assert.Equal("RUNNING -> STOP_COPY", Assert.Single(DeviceMigration.SetState(v1, S.StopCopy)).ToString());
        Assert.True(VfioMigrationInfo.Read(v1).PendingBytes > 0);
        Assert.Equal("StateNotSupported", Assert.Throws<VfioRuleException>(() => DeviceMigration.Plan(v1, S.RunningP2P)).RuleId);
    }

    [Fact]
    public void ADeviceWithoutAMigrationDriverSaysSo()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        using var container = VfioContainer.Open(new VfioHost(kernel));
        container.Attach(2);
        container.SetIommu();
        var edu = container.GetDevice("0000:00:02.0");
        Assert.Equal(MigrationProtocol.None, edu.Migration.Protocol);
        Assert.Equal("NoMigrationSupport", Assert.Throws<VfioRuleException>(() => DeviceMigration.GetState(edu)).RuleId);
    }
}
