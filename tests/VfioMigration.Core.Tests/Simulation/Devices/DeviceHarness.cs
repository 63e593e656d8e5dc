using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>
/// One device of a simulated host opened as a VMM opens it (container, group, SET_CONTAINER, SET_IOMMU,
/// GET_DEVICE_FD), with raw seam calls for the tests. The host's clock is manual: time moves only when a
/// test advances it.
/// </summary>
internal sealed class DeviceHarness : IDisposable
{
    private readonly List<int> _dataFds = new();
    private readonly int _container;
    private readonly int _group;

    private DeviceHarness(SimulatedKernel kernel, string name)
    {
        Kernel = kernel;
        Kernel.Clock.UseManualTime();
        Model = kernel.FindDevice(name) ?? throw new ArgumentException($"No device {name}.", nameof(name));
        int groupNumber = kernel.Configuration.Groups.First(g => g.Devices.Any(d => d.Name == name)).Number;
        _container = Check(kernel.Open(VfioHost.ContainerPath, Libc.O_RDWR));
        _group = Check(kernel.Open($"/dev/vfio/{groupNumber}", Libc.O_RDWR));
        Check(kernel.Ioctl(_group, VfioIoctl.VFIO_GROUP_SET_CONTAINER.Number, BitConverter.GetBytes(_container)));
        Check(kernel.Ioctl(_container, VfioIoctl.VFIO_SET_IOMMU.Number, VFIO_TYPE1v2_IOMMU));
        Device = Check(kernel.Ioctl(_group, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD.Number, VfioHost.CString(name)));
    }

    public SimulatedKernel Kernel { get; }

    public SimDevice Model { get; }

    /// <summary>The device fd.</summary>
    public int Device { get; }

    public static DeviceHarness Open(SimHostConfiguration config, string name) => new(new SimulatedKernel(config), name);

    public static DeviceHarness Open(SimulatedKernel kernel, string name) => new(kernel, name);

    /// <summary>The lab's mtty (v2, STOP_COPY|P2P|PRE_COPY, DMA logging, 24 + 72 bytes of state).</summary>
    public static DeviceHarness Mtty(SimHostConfiguration? config = null) => Open(config ?? SimTopologies.Lab(), SimTopologies.LabMttyUuid);

    public int Ioctl(uint request, Span<byte> arg) => Kernel.Ioctl(Device, request, arg);

    public void Advance(double seconds) => Kernel.Clock.Advance(TimeSpan.FromSeconds(seconds));

    /// <summary>VFIO_DEVICE_FEATURE with a payload of <paramref name="payload"/> bytes; argsz 8 + payload unless given.</summary>
    public (int Rc, byte[] Buffer) Feature(uint feature, uint ops, int payload, Action<byte[]>? fill = null, uint? argsz = null)
    {
        var buffer = new byte[8 + payload];
        StructBytes.Write(buffer, new vfio_device_feature { argsz = argsz ?? (uint)buffer.Length, flags = feature | ops });
        fill?.Invoke(buffer);
        return (Ioctl(VfioIoctl.VFIO_DEVICE_FEATURE.Number, buffer), buffer);
    }

    /// <summary>SET MIG_DEVICE_STATE: the result and the data fd returned (-1 if none).</summary>
    public (int Rc, int DataFd) SetState(uint state)
    {
        var (rc, buffer) = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET, 8,
            b => StructBytes.Write(b, new vfio_device_feature_mig_state { device_state = state, data_fd = 12345 }, 8));
        int fd = StructBytes.Read<vfio_device_feature_mig_state>(buffer, 8).data_fd;
        if (fd >= 0) _dataFds.Add(fd);
        return (rc, fd);
    }

    /// <summary>SET that must succeed; returns the data fd (-1 if none).</summary>
    public int MoveTo(uint state)
    {
        var (rc, fd) = SetState(state);
        Assert.Equal(0, rc);
        return fd;
    }

    public uint GetState()
    {
        var (rc, buffer) = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_GET, 8);
        Assert.Equal(0, rc);
        var mig = StructBytes.Read<vfio_device_feature_mig_state>(buffer, 8);
        Assert.Equal(-1, mig.data_fd);
        return mig.device_state;
    }

    /// <summary>VFIO_MIG_GET_PRECOPY_INFO on a data fd.</summary>
    public (int Rc, ulong Initial, ulong Dirty) PrecopyInfo(int dataFd, uint argsz = 24)
    {
        var info = StructBytes.Buffer(new vfio_precopy_info { argsz = argsz });
        int rc = Kernel.Ioctl(dataFd, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO.Number, info);
        var got = StructBytes.Read<vfio_precopy_info>(info);
        return (rc, got.initial_bytes, got.dirty_bytes);
    }

    /// <summary>Reads until read() answers 0 or an error: the bytes and that last answer.</summary>
    public (byte[] Bytes, long Last) ReadAll(int fd, int chunk = 4096)
    {
        var all = new List<byte>();
        var buffer = new byte[chunk];
        long n;
        while ((n = Kernel.Read(fd, buffer)) > 0) all.AddRange(buffer.AsSpan(0, (int)n).ToArray());
        return (all.ToArray(), n);
    }

    /// <summary>The whole stop-copy stream of a RUNNING device (RUNNING → STOP → STOP_COPY), leaving it in STOP.</summary>
    public byte[] SaveStopped()
    {
        MoveTo(VFIO_DEVICE_STATE_STOP);
        int fd = MoveTo(VFIO_DEVICE_STATE_STOP_COPY);
        var (bytes, last) = ReadAll(fd);
        Assert.Equal(0, last);
        MoveTo(VFIO_DEVICE_STATE_STOP);
        return bytes;
    }

    /// <summary>RESUMING, write the stream, STOP: the SET's result.</summary>
    public int Restore(byte[] stream)
    {
        if (GetState() != VFIO_DEVICE_STATE_STOP) MoveTo(VFIO_DEVICE_STATE_STOP);
        int fd = MoveTo(VFIO_DEVICE_STATE_RESUMING);
        Assert.Equal(stream.Length, Kernel.Write(fd, stream));
        return SetState(VFIO_DEVICE_STATE_STOP).Rc;
    }

    public void Dispose()
    {
        foreach (int fd in _dataFds) Kernel.Close(fd);
        Kernel.Close(Device);
        Kernel.Close(_group);
        Kernel.Close(_container);
    }

    private static int Check(int rc)
    {
        Assert.True(rc >= 0, $"setup call failed: {Errno.Name(-rc)}");
        return rc;
    }
}
