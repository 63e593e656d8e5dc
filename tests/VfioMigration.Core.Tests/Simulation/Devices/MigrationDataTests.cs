using System;
using System.Linq;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>Migration data fds: the stream, PRECOPY_INFO, the end of pre-copy data, resuming and its checks.</summary>
public class MigrationDataTests
{
    private const uint STOP = VFIO_DEVICE_STATE_STOP, RUNNING = VFIO_DEVICE_STATE_RUNNING, STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY,
        RESUMING = VFIO_DEVICE_STATE_RESUMING, PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY, PRE_COPY_P2P = VFIO_DEVICE_STATE_PRE_COPY_P2P;

    private static readonly byte[] MttyHeader =
    {
        0x4e, 0x2c, 0x3e, 0x8c, 0x89, 0x09, 0x9d, 0x7e, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
    };

    [Fact]
    public void TheStreamStartsWithMttysHeaderAndHoldsTheDevicesState()
    {
        using var h = DeviceHarness.Mtty();
        var stream = h.SaveStopped();
        Assert.Equal(96, stream.Length);
        Assert.Equal(MttyHeader, stream.Take(24).ToArray());
        Assert.Equal(h.Model.GetStateBytes(), stream);
    }

    [Fact]
    public void PreCopyOffersTheInitialBytesAndReadsZeroAtTheirEndLikeMtty()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal((0, 24ul, 0ul), h.PrecopyInfo(fd));
        var first = new byte[10];
        Assert.Equal(10, h.Kernel.Read(fd, first));
        Assert.Equal((0, 14ul, 0ul), h.PrecopyInfo(fd)); // initial_bytes falls as data is read
        Assert.Equal(14, h.Kernel.Read(fd, new byte[100]));
        Assert.Equal(0, h.Kernel.Read(fd, new byte[100]));
        Assert.Equal((0, 0ul, 0ul), h.PrecopyInfo(fd));
    }

    [Fact]
    public void TheEndOfPreCopyDataCanBeEnomsgAsTheUapiAllows()
    {
        using var h = DeviceHarness.Mtty();
        h.Model.PreCopyEndOfData = SimPreCopyEndOfData.Enomsg;
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(24, h.Kernel.Read(fd, new byte[100]));
        Assert.Equal(-Errno.ENOMSG, h.Kernel.Read(fd, new byte[100]));
        h.MoveTo(STOP_COPY);
        Assert.Equal(72, h.Kernel.Read(fd, new byte[100]));
        Assert.Equal(0, h.Kernel.Read(fd, new byte[100])); // the end of STOP_COPY is EOF, never ENOMSG
    }

    [Fact]
    public void PrecopyInfoIsOnlyForPreCopyStatesAndAFullArgument()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(-Errno.EINVAL, h.PrecopyInfo(fd, argsz: 23).Rc);
        Assert.Equal(-Errno.EFAULT, h.Kernel.Ioctl(fd, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO.Number, new byte[16]));
        h.MoveTo(PRE_COPY_P2P);
        Assert.Equal(0, h.PrecopyInfo(fd).Rc);
        h.MoveTo(STOP_COPY);
        Assert.Equal(-Errno.EINVAL, h.PrecopyInfo(fd).Rc);
        Assert.Equal(-Errno.ENOTTY, h.Kernel.Ioctl(fd, VfioIoctl.VFIO_DEVICE_GET_INFO.Number, new byte[24]));
    }

    [Fact]
    public void AnEndedPreCopyFdAnswersEnodevEvenWhenANewSessionRuns()
    {
        using var h = DeviceHarness.Mtty();
        int old = h.MoveTo(PRE_COPY);
        h.MoveTo(RUNNING);
        int current = h.MoveTo(PRE_COPY);
        Assert.Equal(-Errno.ENODEV, h.PrecopyInfo(old).Rc);
        Assert.Equal(0, h.PrecopyInfo(current).Rc);
    }

    [Fact]
    public void DataFdsAreStreamsOpenedForOneDirection()
    {
        using var h = DeviceHarness.Mtty();
        int save = h.MoveTo(PRE_COPY);
        Assert.Equal(-Errno.EBADF, h.Kernel.Write(save, new byte[4]));
        Assert.Equal(-Errno.ESPIPE, h.Kernel.Pread(save, new byte[4], 0));
        Assert.Equal(-Errno.ENODEV, (int)h.Kernel.Mmap(4096, 0, Libc.PROT_READ, Libc.MAP_SHARED, save));
        h.MoveTo(RUNNING);
        h.MoveTo(STOP);
        int resume = h.MoveTo(RESUMING);
        Assert.Equal(-Errno.EBADF, h.Kernel.Read(resume, new byte[4]));
        Assert.Equal(-Errno.ESPIPE, h.Kernel.Pwrite(resume, new byte[4], 0));
        Assert.Equal(-Errno.ENOTTY, h.PrecopyInfo(resume).Rc);
    }

    [Fact]
    public void PollSaysReadableWhenDataIsThereOrTheStreamEnded()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(1, h.Kernel.Poll(fd, Libc.POLLIN, 0, out short revents));
        Assert.Equal(Libc.POLLIN, revents);
        h.ReadAll(fd);
        Assert.Equal(0, h.Kernel.Poll(fd, Libc.POLLIN, 0, out _));
        h.MoveTo(STOP_COPY);
        h.ReadAll(fd);
        Assert.Equal(1, h.Kernel.Poll(fd, Libc.POLLIN, 0, out _)); // EOF is readable
        h.MoveTo(STOP);
        int resume = h.MoveTo(RESUMING);
        Assert.Equal(1, h.Kernel.Poll(resume, Libc.POLLOUT, 0, out revents));
        Assert.Equal(Libc.POLLOUT, revents);
    }

    [Fact]
    public void ClosingTheDataFdDoesNotEndTheSession()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(0, h.Kernel.Close(fd));
        Assert.Equal(PRE_COPY, h.GetState());
        Assert.Equal(-1, h.MoveTo(STOP_COPY));
        Assert.Equal(STOP_COPY, h.GetState());
    }

    [Fact]
    public void ARestoreLoadsTheStateIntoAnotherDeviceAndItsOwnSaveGivesTheSameBytes()
    {
        var source = SimDeviceExamples.V2PciDevice("0000:00:06.0");
        var destination = SimDeviceExamples.V2PciDevice("0000:00:07.0");
        destination.Workload.Seed = 99;
        var config = SimDeviceExamples.Host(10, source, destination);
        var kernel = new SimulatedKernel(config);
        using var src = DeviceHarness.Open(kernel, "0000:00:06.0");
        using var dst = DeviceHarness.Open(kernel, "0000:00:07.0");
        Assert.NotEqual(src.Model.GetStateBytes(), dst.Model.GetStateBytes());

        var stream = src.SaveStopped();
        Assert.Equal(0, dst.Restore(stream));
        Assert.Equal(src.Model.GetStateBytes(), dst.Model.GetStateBytes());
        dst.MoveTo(RUNNING);
        Assert.Equal(stream, dst.SaveStopped());
    }

    [Fact]
    public void AnIncompleteStreamFailsTheLoadAndTheDeviceStaysResuming()
    {
        using var h = DeviceHarness.Mtty();
        var stream = h.SaveStopped();
        int fd = h.MoveTo(RESUMING);
        Assert.Equal(95, h.Kernel.Write(fd, stream.AsSpan(0, 95)));
        Assert.Equal(-Errno.EINVAL, h.SetState(STOP).Rc);
        Assert.Equal(RESUMING, h.GetState());
        Assert.Equal(1, h.Kernel.Write(fd, stream.AsSpan(95)));
        Assert.Equal(0, h.SetState(STOP).Rc);
    }

    [Fact]
    public void AForeignHeaderIsRefusedWhenItsLastByteArrivesYetItsBytesAreTakenAndLoadedAsMttyDoes()
    {
        using var h = DeviceHarness.Mtty();
        var stream = h.SaveStopped();
        stream[16] = 1; // nr_ports 1: a stream of an mtty-1
        stream[24] = 0x5a; // port 0's first register
        int fd = h.MoveTo(RESUMING);
        Assert.Equal(20, h.Kernel.Write(fd, stream.AsSpan(0, 20)));
        Assert.Equal(-Errno.EFAULT, h.Kernel.Write(fd, stream.AsSpan(20, 10)));
        // mtty_resume_write advanced the position before it answered EFAULT: the rest follows at byte 30.
        Assert.Equal(66, h.Kernel.Write(fd, stream.AsSpan(30)));
        // mtty_load_state checks only the length; a client that ignored the EFAULT has loaded the ports.
        Assert.Equal(0, h.SetState(STOP).Rc);
        Assert.Equal(0x5a, h.Model.GetStateBytes()[24]);
        Assert.Equal(2, h.Model.GetStateBytes()[16]);
    }

    [Fact]
    public void AStreamCarryingPreCopyDirtyDataRestoresTheFinalState()
    {
        var source = SimDeviceExamples.V2PciDevice("0000:00:06.0");
        source.Workload = new SimWorkload { StateSize = 4096, InitialBytes = 1024, StateDirtyBytesPerSecond = 2048, Seed = 5 };
        var destination = SimDeviceExamples.V2PciDevice("0000:00:07.0");
        destination.Workload = new SimWorkload { StateSize = 4096, InitialBytes = 1024, Seed = 6 };
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, source, destination));
        using var src = DeviceHarness.Open(kernel, "0000:00:06.0");
        using var dst = DeviceHarness.Open(kernel, "0000:00:07.0");

        int fd = src.MoveTo(VFIO_DEVICE_STATE_PRE_COPY);
        var stream = new System.Collections.Generic.List<byte>(src.ReadAll(fd).Bytes);
        for (int i = 0; i < 5; i++)
        {
            src.Advance(0.5);
            var (_, _, dirty) = src.PrecopyInfo(fd);
            Assert.True(dirty > 0, "the running device dirtied its state");
            stream.AddRange(src.ReadAll(fd).Bytes);
        }
        src.Advance(0.5);
        src.MoveTo(STOP_COPY);
        stream.AddRange(src.ReadAll(fd).Bytes);
        Assert.True(stream.Count > 4096);

        Assert.Equal(0, dst.Restore(stream.ToArray()));
        Assert.Equal(src.Model.GetStateBytes(), dst.Model.GetStateBytes());
    }

    [Fact]
    public void DirtyBytesGrowWithTheWorkloadOnlyWhileTheDeviceRuns()
    {
        var device = SimDeviceExamples.V2PciDevice();
        device.Workload = new SimWorkload { StateSize = 64 * 1024, InitialBytes = 24, StateDirtyBytesPerSecond = 4096 };
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, device), "0000:00:06.0");
        int fd = h.MoveTo(PRE_COPY);
        Assert.Equal(0ul, h.PrecopyInfo(fd).Dirty);
        h.Advance(1);
        ulong afterOne = h.PrecopyInfo(fd).Dirty;
        h.Advance(1);
        ulong afterTwo = h.PrecopyInfo(fd).Dirty;
        Assert.True(afterOne > 0 && afterTwo > afterOne, $"{afterOne} then {afterTwo}");
        h.MoveTo(PRE_COPY_P2P);
        h.ReadAll(fd);
        h.MoveTo(STOP_COPY);
        long before = h.Model.GetStateBytes().Aggregate(0L, (a, b) => a * 31 + b);
        h.Advance(10);
        h.ReadAll(fd);
        Assert.Equal(before, h.Model.GetStateBytes().Aggregate(0L, (a, b) => a * 31 + b)); // a stopped device does not change
    }

    [Theory]
    [InlineData(0.0, true)]
    [InlineData(64.0 * 1024, true)]         // slower than the reader drains it
    [InlineData(4.0 * 1024 * 1024, false)]  // faster: what is left never falls to one read's worth
    public void PreCopyConvergesOnlyWhenTheDeviceDirtiesSlowerThanTheReaderDrains(double rate, bool converges)
    {
        var device = SimDeviceExamples.V2PciDevice();
        device.Workload = new SimWorkload { StateSize = 256 * 1024, InitialBytes = 16 * 1024, StateDirtyBytesPerSecond = rate };
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, device), "0000:00:06.0");
        int fd = h.MoveTo(PRE_COPY);
        // The reader takes up to 4 KiB every 10 ms of simulated time (400 KiB/s), as a VMM's save loop with
        // a bandwidth limit; it may switch to stop-copy once what is left fits in one read.
        var buffer = new byte[4096];
        bool converged = false;
        for (int i = 0; i < 1000 && !converged; i++)
        {
            h.Advance(0.01);
            Assert.True(h.Kernel.Read(fd, buffer) >= 0);
            var (_, initial, dirty) = h.PrecopyInfo(fd);
            converged = initial + dirty <= (ulong)buffer.Length;
        }
        Assert.Equal(converges, converged);
    }

    [Fact]
    public void TheSameSeedAndClockGiveTheSameStream()
    {
        static byte[] Run(int seed)
        {
            var device = SimDeviceExamples.V2PciDevice();
            device.Workload = new SimWorkload { StateSize = 8192, InitialBytes = 512, StateDirtyBytesPerSecond = 3000, Seed = seed };
            using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, device), "0000:00:06.0");
            int fd = h.MoveTo(PRE_COPY);
            var all = new System.Collections.Generic.List<byte>();
            for (int i = 0; i < 4; i++)
            {
                h.Advance(0.25);
                all.AddRange(h.ReadAll(fd, chunk: 100).Bytes);
            }
            h.MoveTo(STOP_COPY);
            all.AddRange(h.ReadAll(fd).Bytes);
            return all.ToArray();
        }
        Assert.Equal(Run(3), Run(3));
        Assert.NotEqual(Run(3), Run(4));
    }
}
