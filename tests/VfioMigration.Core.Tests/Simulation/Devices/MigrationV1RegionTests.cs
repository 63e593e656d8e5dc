using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>The 5.8 series' migration region: field access, the VALID table, saving and resuming sequences, mmap, the error state.</summary>
public class MigrationV1RegionTests
{
    private const long Region = 9L << 40;
    private const long DeviceState = Region, PendingBytes = Region + 8, DataOffset = Region + 16, DataSize = Region + 24;
    private const uint STOP = 0, RUNNING = 1, SAVING = 2, PRE_COPY = 3, RESUMING = 4;

    private static DeviceHarness V1(SimWorkload? workload = null, SimulatedKernel? kernel = null, string name = "0000:00:05.0")
    {
        if (kernel is not null) return DeviceHarness.Open(kernel, name);
        var device = SimDeviceExamples.V1Device(name);
        if (workload is not null) device.Workload = workload;
        return DeviceHarness.Open(SimDeviceExamples.Host(10, device), name);
    }

    private static uint ReadState(DeviceHarness h)
    {
        var b = new byte[4];
        Assert.Equal(4, h.Kernel.Pread(h.Device, b, DeviceState));
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    private static long WriteState(DeviceHarness h, uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return h.Kernel.Pwrite(h.Device, b, DeviceState);
    }

    private static ulong Read64(DeviceHarness h, long offset)
    {
        var b = new byte[8];
        Assert.Equal(8, h.Kernel.Pread(h.Device, b, offset));
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    /// <summary>The saving loop of the 5.8 doc: pending_bytes → data_offset → data_size → data, until pending is 0.</summary>
    private static byte[] SaveLoop(DeviceHarness h, List<int>? chunks = null)
    {
        var stream = new List<byte>();
        ulong pending = Read64(h, PendingBytes);
        while (pending > 0)
        {
            ulong offset = Read64(h, DataOffset);
            ulong size = Read64(h, DataSize);
            var chunk = new byte[size];
            Assert.Equal((long)size, h.Kernel.Pread(h.Device, chunk, Region + (long)offset));
            stream.AddRange(chunk);
            chunks?.Add((int)size);
            pending = Read64(h, PendingBytes);
        }
        return stream.ToArray();
    }

    [Fact]
    public void TheDeviceOpensRunningAndFieldsAreReadOnlyAtTheirNaturalWidth()
    {
        using var h = V1();
        Assert.Equal(RUNNING, ReadState(h));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, new byte[8], DeviceState));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, new byte[4], PendingBytes));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, new byte[8], Region + 12));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, new byte[4], Region + 4)); // the reserved word
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pwrite(h.Device, new byte[8], PendingBytes));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pwrite(h.Device, new byte[8], DataOffset));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pwrite(h.Device, new byte[8], DataSize)); // only while resuming
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, new byte[8], Region + 0x2000)); // past the region
    }

    [Fact]
    public void ReservedBitsAreKeptAsWritten()
    {
        using var h = V1();
        Assert.Equal(4, WriteState(h, 0xABC00u | STOP));
        Assert.Equal(0xABC00u, ReadState(h));
        Assert.Equal(4, WriteState(h, 0xABC00u | RUNNING));
        Assert.Equal(0xABC01u, ReadState(h));
    }

    [Theory]
    [InlineData(5u)]
    [InlineData(6u)]
    [InlineData(7u)]
    public void StatesOutsideTheValidTableAreRefusedAndChangeNothing(uint state)
    {
        using var h = V1();
        Assert.Equal(-Errno.EINVAL, WriteState(h, state));
        Assert.Equal(RUNNING, ReadState(h));
    }

    [Fact]
    public void StopAndCopySavesTheWholeStateThenPendingIsZero()
    {
        using var h = V1();
        Assert.Equal(4, WriteState(h, SAVING));
        Assert.Equal(96ul, Read64(h, PendingBytes));
        Assert.Equal(0x1000ul, Read64(h, DataOffset));
        Assert.Equal(96ul, Read64(h, DataSize));
        Assert.Equal(96ul, Read64(h, DataSize)); // re-reading within the iteration: the same chunk
        var chunk = new byte[96];
        Assert.Equal(96, h.Kernel.Pread(h.Device, chunk, Region + 0x1000));
        Assert.Equal(0ul, Read64(h, PendingBytes));
        Assert.Equal(h.Model.GetStateBytes(), chunk);
        Assert.Equal(0x4e, chunk[0]);
        Assert.Equal(4, WriteState(h, STOP));
    }

    [Fact]
    public void InPreCopyPendingDropsToZeroAndGrowsAgainWithTheWorkload()
    {
        using var h = V1(new SimWorkload { StateSize = 4096, InitialBytes = 512, StateDirtyBytesPerSecond = 1024 });
        Assert.Equal(4, WriteState(h, PRE_COPY));
        Assert.Equal(512, SaveLoop(h).Length);
        Assert.Equal(0ul, Read64(h, PendingBytes));
        h.Advance(1);
        Assert.True(Read64(h, PendingBytes) > 0);
        SaveLoop(h);
        Assert.Equal(4, WriteState(h, SAVING));
        Assert.True(Read64(h, PendingBytes) >= 4096 - 512);
        SaveLoop(h);
        Assert.Equal(0ul, Read64(h, PendingBytes));
        h.Advance(1);
        Assert.Equal(0ul, Read64(h, PendingBytes)); // stopped: nothing new
    }

    [Fact]
    public void StopAndCopyCannotReturnToPreCopy()
    {
        using var h = V1();
        WriteState(h, SAVING);
        Assert.Equal(-Errno.EINVAL, WriteState(h, PRE_COPY));
        Assert.Equal(SAVING, ReadState(h));
    }

    [Fact]
    public void ALargeStateComesInWindowSizedChunks()
    {
        using var h = V1(new SimWorkload { StateSize = 2 * 1024 * 1024 + 100, InitialBytes = 24 });
        WriteState(h, SAVING);
        var chunks = new List<int>();
        var stream = SaveLoop(h, chunks);
        Assert.Equal(new[] { 0x100000, 0x100000, 100 }, chunks);
        Assert.Equal(h.Model.GetStateBytes(), stream);
    }

    [Fact]
    public void TheDataSectionIsMmappableAndTheMappingOutlivesMunmap()
    {
        using var h = V1();
        nint address = h.Kernel.Mmap(0x1000, Region + 0x1000, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, h.Device);
        Assert.True(address > 0);
        Assert.Equal(-Errno.EINVAL, (int)h.Kernel.Mmap(0x1000, Region, Libc.PROT_READ, Libc.MAP_SHARED, h.Device)); // the header is not in the sparse area
        Assert.Equal(-Errno.EINVAL, (int)h.Kernel.Mmap(0x2000, Region + 0x1000, Libc.PROT_READ, Libc.MAP_SHARED, h.Device));
        Assert.Equal(-Errno.EINVAL, (int)h.Kernel.Mmap(0x1000, Region + 0x1000, Libc.PROT_READ, Libc.MAP_PRIVATE, h.Device));

        WriteState(h, SAVING);
        Read64(h, PendingBytes);
        Read64(h, DataOffset);
        Assert.Equal(96ul, Read64(h, DataSize));
        Assert.Equal(h.Model.GetStateBytes(), UserMemory.View(address, 96).ToArray());
        Assert.Equal(0, h.Kernel.Munmap(address, 0x1000));
        Assert.Equal(h.Model.GetStateBytes(), UserMemory.View(address, 96).ToArray()); // device memory, not freed
    }

    [Fact]
    public void ResumingLoadsWhatWasWrittenWhenTheDeviceLeavesResuming()
    {
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, SimDeviceExamples.V1Device("0000:00:05.0"),
            new SimDeviceConfig { Name = "0000:00:06.0", Migration = SimMigrationProtocol.V1, Workload = new SimWorkload { Seed = 77 } }));
        using var src = V1(kernel: kernel, name: "0000:00:05.0");
        using var dst = V1(kernel: kernel, name: "0000:00:06.0");
        WriteState(src, SAVING);
        var stream = SaveLoop(src);

        Assert.Equal(4, WriteState(dst, RESUMING));
        Assert.Equal(0x1000ul, Read64(dst, DataOffset));
        // Two chunks: one through pwrite, one through the mmap of the data section.
        Assert.Equal(40, dst.Kernel.Pwrite(dst.Device, stream.AsSpan(0, 40), Region + 0x1000));
        var size = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(size, 40);
        Assert.Equal(8, dst.Kernel.Pwrite(dst.Device, size, DataSize));
        nint window = dst.Kernel.Mmap(0x1000, Region + 0x1000, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, dst.Device);
        stream.AsSpan(40).CopyTo(UserMemory.View(window, 56));
        BinaryPrimitives.WriteUInt64LittleEndian(size, 56);
        Assert.Equal(8, dst.Kernel.Pwrite(dst.Device, size, DataSize));
        Assert.Equal(4, WriteState(dst, RUNNING));
        Assert.Equal(src.Model.GetStateBytes(), dst.Model.GetStateBytes());
    }

    [Fact]
    public void AnIncompleteResumeFailsAndLeavesTheDeviceResuming()
    {
        using var h = V1();
        WriteState(h, RESUMING);
        var size = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(size, 0x1001);
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pwrite(h.Device, size, DataSize)); // larger than the data section
        Assert.Equal(-Errno.EINVAL, WriteState(h, RUNNING));
        Assert.Equal(RESUMING, ReadState(h));
    }

    [Fact]
    public void TheErrorStateIsLeftOnlyByReset()
    {
        using var h = V1();
        Assert.Equal(4, WriteState(h, 0x100 | PRE_COPY));
        h.Kernel.Faults.ErrorOnTransition("0000:00:05.0", SAVING);
        Assert.Equal(-Errno.EIO, WriteState(h, 0x100 | SAVING));
        Assert.Equal(0x106u, ReadState(h)); // _SAVING|_RESUMING, reserved bits kept
        Assert.True(VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(ReadState(h)));
        Assert.Equal(-Errno.EINVAL, WriteState(h, RUNNING));
        Assert.Equal(-Errno.EINVAL, WriteState(h, STOP));
        Assert.Equal(0, h.Ioctl(VfioIoctl.VFIO_DEVICE_RESET.Number, default));
        Assert.Equal(RUNNING, ReadState(h));
    }
}
