using System;
using VfioMigration.Core.Native;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>The simulator's faults on migration data fds and arcs, as the migration-safety matrix uses them.</summary>
public class DataFaultTests
{
    private const uint STOP = VFIO_DEVICE_STATE_STOP, STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY, RESUMING = VFIO_DEVICE_STATE_RESUMING,
        PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY, RUNNING = VFIO_DEVICE_STATE_RUNNING;

    [Fact]
    public void AReadFaultInStopCopyLeavesPreCopyReadsAloneAndFiresOnce()
    {
        using var h = DeviceHarness.Mtty();
        h.Kernel.Faults.FailDataTransfer(h.Model.Name, saving: true, 1, Errno.EIO, inState: STOP_COPY);
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(24, h.Kernel.Read(fd, new byte[100]));   // pre-copy reads do not count
        h.MoveTo(STOP_COPY);
        Assert.Equal(-Errno.EIO, h.Kernel.Read(fd, new byte[100]));
        Assert.Equal(72, h.Kernel.Read(fd, new byte[100]));   // the driver's next read goes on
    }

    [Fact]
    public void TheNthWriteWhileResumingFails()
    {
        using var h = DeviceHarness.Mtty();
        var stream = h.SaveStopped();
        h.Kernel.Faults.FailDataTransfer(h.Model.Name, saving: false, 2, Errno.EIO, inState: RESUMING);
        int fd = h.MoveTo(RESUMING);
        Assert.Equal(24, h.Kernel.Write(fd, stream.AsSpan(0, 24)));
        Assert.Equal(-Errno.EIO, h.Kernel.Write(fd, stream.AsSpan(24)));
        Assert.Equal(72, h.Kernel.Write(fd, stream.AsSpan(24)));
        Assert.Equal(0, h.SetState(STOP).Rc);
    }

    [Fact]
    public void ARefusedArcAnswersItsErrnoAndLeavesTheDeviceWhereTheArcStarted()
    {
        using var h = DeviceHarness.Mtty();
        h.MoveTo(STOP);
        h.Kernel.Faults.RefuseTransition(h.Model.Name, RUNNING, Errno.EBUSY);
        Assert.Equal(-Errno.EBUSY, h.SetState(RUNNING).Rc);
        Assert.Equal(VFIO_DEVICE_STATE_RUNNING_P2P, h.GetState());   // mtty has P2P: STOP -> RUNNING_P2P went, RUNNING_P2P -> RUNNING did not
        Assert.Equal(0, h.SetState(RUNNING).Rc);   // once
    }
}
