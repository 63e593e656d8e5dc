using System;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>An open device descriptor (VFIO_GROUP_GET_DEVICE_FD): the device ioctls, region I/O and mmap.</summary>
internal sealed class SimDeviceFile : SimFile
{
    private readonly SimDevice _device;
    private readonly bool _cdev;

    /// <summary>A device file; <paramref name="cdev"/> when opened through /dev/vfio/devices/vfioN (and bound), not through the group.</summary>
    public SimDeviceFile(SimulatedKernel kernel, SimDevice device, bool cdev = false) : base(kernel)
    {
        _device = device;
        _cdev = cdev;
    }

    public override SimFileKind Kind => SimFileKind.Device;

    public override string Name => _device.Name;

    public override int Ioctl(uint request, Span<byte> arg)
    {
        _device.Tick();
        if (request == VfioIoctl.VFIO_DEVICE_FEATURE.Number) return SimDeviceFeature.Handle(_device, arg);
        if (request == VfioIoctl.VFIO_DEVICE_GET_INFO.Number) return GetInfo(arg);
        if (request == VfioIoctl.VFIO_DEVICE_GET_REGION_INFO.Number) return _device.Regions.GetRegionInfo(arg);
        if (request == VfioIoctl.VFIO_DEVICE_GET_IRQ_INFO.Number) return _device.Regions.GetIrqInfo(arg);
        if (request == VfioIoctl.VFIO_DEVICE_RESET.Number) return _device.Reset();
        return -Errno.ENOTTY;
    }

    public override int Ioctl(uint request, ulong value)
    {
        _device.Tick();
        // VFIO_DEVICE_RESET takes no argument; the others take a pointer, and an integer is not one.
        if (request == VfioIoctl.VFIO_DEVICE_RESET.Number) return _device.Reset();
        if (request == VfioIoctl.VFIO_DEVICE_FEATURE.Number || request == VfioIoctl.VFIO_DEVICE_GET_INFO.Number
            || request == VfioIoctl.VFIO_DEVICE_GET_REGION_INFO.Number || request == VfioIoctl.VFIO_DEVICE_GET_IRQ_INFO.Number)
            return -Errno.EFAULT;
        return -Errno.ENOTTY;
    }

    /// <summary>
    /// VFIO_DEVICE_GET_INFO: vfio_pci_ioctl_get_info copies back min(argsz, sizeof(info)) bytes (24 in 6.12,
    /// cap_offset and pad zero: no device capabilities here); mtty_ioctl copies back the first 16.
    /// </summary>
    private int GetInfo(Span<byte> arg)
    {
        const int minsz = 16; // offsetofend(struct vfio_device_info, num_irqs)
        if (arg.Length < minsz) return -Errno.EFAULT;
        uint argsz = BitConverter.ToUInt32(arg);
        if (argsz < minsz) return -Errno.EINVAL;
        int copy = _device.IsMdev ? minsz : (int)Math.Min(argsz, 24u);
        if (arg.Length < copy) return -Errno.EFAULT;
        Span<byte> info = stackalloc byte[24];
        info.Clear();
        BitConverter.TryWriteBytes(info, argsz);
        uint flags = VFIO_DEVICE_FLAGS_PCI | (_device.Config.Reset ? VFIO_DEVICE_FLAGS_RESET : 0);
        BitConverter.TryWriteBytes(info.Slice(4), flags);
        BitConverter.TryWriteBytes(info.Slice(8), _device.Regions.NumRegions);
        BitConverter.TryWriteBytes(info.Slice(12), VFIO_PCI_NUM_IRQS);
        info.Slice(0, copy).CopyTo(arg);
        _device.InfoQueried = true;
        return 0;
    }

    public override long Pread(Span<byte> buffer, long offset)
    {
        _device.Tick();
        return _device.Regions.Read(buffer, offset);
    }

    public override long Pwrite(ReadOnlySpan<byte> buffer, long offset)
    {
        _device.Tick();
        return _device.Regions.Write(buffer, offset);
    }

    public override nint Mmap(nint length, long offset, int prot, int flags) => _device.Regions.Map(length, offset, flags);

    public override void Release()
    {
        if (!_cdev) _device.Group.OpenDevices--;
        _device.Closed();
    }
}
