using System.Collections.Generic;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>The v2 state machine: vfio_from_fsm_table, state_flags_table and the arcs that open and end data sessions.</summary>
public class MigrationV2Tests
{
    private const uint STOP = VFIO_DEVICE_STATE_STOP, RUNNING = VFIO_DEVICE_STATE_RUNNING, STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY,
        RESUMING = VFIO_DEVICE_STATE_RESUMING, RUNNING_P2P = VFIO_DEVICE_STATE_RUNNING_P2P, PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY,
        PRE_COPY_P2P = VFIO_DEVICE_STATE_PRE_COPY_P2P, ERROR = VFIO_DEVICE_STATE_ERROR;

    private const ulong All = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

    /// <summary>The arcs the core hands the driver, walking vfio_mig_get_next_state from cur to target.</summary>
    private static List<uint> Path(ulong flags, uint cur, uint target)
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, SimDeviceExamples.V2PciDevice(flags: flags)), "0000:00:06.0");
        var fsm = h.Model.MigrationV2!;
        var path = new List<uint>();
        while (cur != target)
        {
            Assert.Equal(0, fsm.NextState(cur, target, out uint next));
            path.Add(next);
            cur = next;
        }
        return path;
    }

    [Fact]
    public void CombinationTransitionsFollowTheCoresTable()
    {
        // kernel-interface.md b.2's examples, full support.
        Assert.Equal(new[] { RUNNING_P2P, STOP, STOP_COPY }, Path(All, RUNNING, STOP_COPY));
        Assert.Equal(new[] { STOP, RUNNING_P2P, RUNNING }, Path(All, RESUMING, RUNNING));
        Assert.Equal(new[] { RUNNING_P2P, RUNNING, PRE_COPY }, Path(All, STOP, PRE_COPY));
        Assert.Equal(new[] { PRE_COPY_P2P, STOP_COPY }, Path(All, PRE_COPY, STOP_COPY));
    }

    [Fact]
    public void UnsupportedStatesAreSkippedOver()
    {
        Assert.Equal(new[] { STOP }, Path(VFIO_MIGRATION_STOP_COPY, RUNNING, STOP));
        Assert.Equal(new[] { RUNNING }, Path(VFIO_MIGRATION_STOP_COPY, STOP, RUNNING));
        Assert.Equal(new[] { STOP_COPY }, Path(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY, PRE_COPY, STOP_COPY));
        Assert.Equal(new[] { RUNNING, PRE_COPY }, Path(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY, STOP, PRE_COPY));
    }

    [Theory]
    [InlineData(42u)]
    [InlineData(ERROR)]
    public void AStateThatIsNotOneIsEinvalAndNothingChanges(uint state)
    {
        using var h = DeviceHarness.Mtty();
        var (rc, fd) = h.SetState(state);
        Assert.Equal((-Errno.EINVAL, -1), (rc, fd));
        Assert.Equal(RUNNING, h.GetState());
    }

    [Fact]
    public void AStateTheDeviceDoesNotSupportIsEinval()
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, SimDeviceExamples.V2WithoutP2P()), "0000:00:08.0");
        Assert.Equal(-Errno.EINVAL, h.SetState(RUNNING_P2P).Rc);
        Assert.Equal(-Errno.EINVAL, h.SetState(PRE_COPY_P2P).Rc);
        using var noPreCopy = DeviceHarness.Open(SimDeviceExamples.Host(10, SimDeviceExamples.V2WithoutPreCopy()), "0000:00:09.0");
        Assert.Equal(-Errno.EINVAL, noPreCopy.SetState(PRE_COPY).Rc);
        Assert.Equal(RUNNING, noPreCopy.GetState());
    }

    [Fact]
    public void StopCopyCannotGoBackToPreCopy()
    {
        using var h = DeviceHarness.Mtty();
        h.MoveTo(STOP);
        h.MoveTo(STOP_COPY);
        Assert.Equal(-Errno.EINVAL, h.SetState(PRE_COPY).Rc);
        Assert.Equal(-Errno.EINVAL, h.SetState(PRE_COPY_P2P).Rc);
        Assert.Equal(STOP_COPY, h.GetState());
    }

    [Fact]
    public void OnlyTheArcsThatStartASessionReturnADataFd()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(-1, h.MoveTo(RUNNING)); // already there
        Assert.True(h.MoveTo(PRE_COPY) >= 0);
        Assert.Equal(-1, h.MoveTo(PRE_COPY_P2P));
        Assert.Equal(-1, h.MoveTo(STOP_COPY)); // kernel-interface.md lab 9: the pre-copy fd goes on
        Assert.Equal(-1, h.MoveTo(STOP));
        Assert.True(h.MoveTo(RESUMING) >= 0);
        Assert.Equal(-Errno.EINVAL, h.SetState(STOP).Rc); // nothing written: the load fails
        Assert.Equal(RESUMING, h.GetState());
    }

    [Fact]
    public void RunningToStopCopyInOneSetOpensTheSessionOnItsLastArc()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(STOP_COPY);
        Assert.True(fd >= 0);
        var (bytes, last) = h.ReadAll(fd);
        Assert.Equal((96, 0L), (bytes.Length, last));
        Assert.Equal(-1, h.MoveTo(RUNNING_P2P));
    }

    [Fact]
    public void ThePreCopyFdCarriesTheWholeStreamThroughStopCopy()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(PRE_COPY);
        var (initial, last) = h.ReadAll(fd);
        Assert.Equal((24, 0L), (initial.Length, last));
        h.MoveTo(STOP_COPY);
        var (rest, end) = h.ReadAll(fd);
        Assert.Equal((72, 0L), (rest.Length, end));
    }

    [Fact]
    public void ArcsThatEndTheSessionLeaveTheOldFdAnsweringEnodev()
    {
        using var h = DeviceHarness.Mtty();
        int preCopy = h.MoveTo(PRE_COPY);
        h.MoveTo(RUNNING);
        Assert.Equal(-Errno.ENODEV, h.Kernel.Read(preCopy, new byte[8]));
        int stopCopy = h.MoveTo(STOP_COPY);
        h.MoveTo(STOP);
        Assert.Equal(-Errno.ENODEV, h.Kernel.Read(stopCopy, new byte[8]));
        int resume = h.MoveTo(RESUMING);
        h.Model.MigrationV2!.Reset();
        Assert.Equal(-Errno.ENODEV, h.Kernel.Write(resume, new byte[8]));
    }

    [Fact]
    public void ADeviceWithoutPreCopyOrP2PStillMigratesStopAndCopy()
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, SimDeviceExamples.V2StopCopyOnly()), "0000:00:07.0");
        var flags = h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_GET, 8).Buffer;
        Assert.Equal(VFIO_MIGRATION_STOP_COPY, StructBytes.Read<vfio_device_feature_migration>(flags, 8).flags);
        var stream = h.SaveStopped();
        Assert.Equal(96, stream.Length);
        Assert.Equal(0, h.Restore(stream));
        Assert.Equal(-1, h.MoveTo(RUNNING));
    }

    [Fact]
    public void WithoutP2PPreCopyGoesStraightToStopCopyOnTheSameFd()
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, SimDeviceExamples.V2WithoutP2P()), "0000:00:08.0");
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(-1, h.MoveTo(STOP_COPY));
        Assert.Equal(96, h.ReadAll(fd).Bytes.Length);
    }

    [Fact]
    public void AnInjectedFaultLeavesTheDeviceInErrorUntilReset()
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, SimDeviceExamples.V2PciDevice()), "0000:00:06.0");
        int fd = h.MoveTo(PRE_COPY);
        h.Kernel.Faults.ErrorOnTransition("0000:00:06.0", STOP_COPY);
        var (rc, dataFd) = h.SetState(STOP_COPY);
        Assert.Equal((-Errno.EIO, -1), (rc, dataFd));
        Assert.Equal(ERROR, h.GetState());
        Assert.Equal(-Errno.ENODEV, h.Kernel.Read(fd, new byte[8]));
        Assert.Equal(-Errno.EINVAL, h.SetState(RUNNING).Rc);
        Assert.Equal(0, h.Ioctl(VfioIoctl.VFIO_DEVICE_RESET.Number, default));
        Assert.Equal(RUNNING, h.GetState());
        Assert.True(h.MoveTo(PRE_COPY) >= 0); // the fault was used up
    }

    [Fact]
    public void AFaultOnAnotherTargetDoesNotFire()
    {
        using var h = DeviceHarness.Mtty();
        h.Kernel.Faults.ErrorOnTransition(SimTopologies.LabMttyUuid, RESUMING);
        h.MoveTo(STOP);
        Assert.Equal(STOP, h.GetState());
        Assert.Equal(-Errno.EIO, h.SetState(RESUMING).Rc);
        Assert.Equal(ERROR, h.GetState());
    }

    [Fact]
    public void AVariantPciDeviceStartsRunningAtEachOpenWhileMttyKeepsItsState()
    {
        var kernel = new SimulatedKernel(SimDeviceExamples.LabWith(SimDeviceExamples.V2PciDevice()));
        using (var pci = DeviceHarness.Open(kernel, "0000:00:06.0")) pci.MoveTo(STOP);
        using (var again = DeviceHarness.Open(kernel, "0000:00:06.0")) Assert.Equal(RUNNING, again.GetState());
        using (var mtty = DeviceHarness.Open(kernel, SimTopologies.LabMttyUuid)) mtty.MoveTo(STOP);
        using (var again = DeviceHarness.Open(kernel, SimTopologies.LabMttyUuid)) Assert.Equal(STOP, again.GetState());
    }
}
