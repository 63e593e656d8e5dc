using System;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Iommufd;

/// <summary>
/// An open /dev/vfio/devices/vfioN (drivers/vfio/device_cdev.c): nothing but VFIO_DEVICE_BIND_IOMMUFD until it
/// is bound (every other call answers EINVAL: access is not granted yet), then the device's own ioctls, region
/// I/O and mmap, plus VFIO_DEVICE_ATTACH/DETACH_IOMMUFD_PT. The last close unbinds.
/// </summary>
internal sealed class SimDeviceCdev : SimFile
{
    private readonly SimDevice _device;
    private SimIommufd? _ictx;
    private SimIommufdObject? _bound;
    private SimFile? _inner;

    public SimDeviceCdev(SimulatedKernel kernel, SimDevice device) : base(kernel) => _device = device;

    public override SimFileKind Kind => SimFileKind.Device;

    public override string Name => _device.Name;

    public override int Ioctl(uint request, Span<byte> arg)
    {
        if (request == VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD.Number) return Bind(arg);
        if (_bound is null) return -Errno.EINVAL;   // vfio_device_fops_unl_ioctl: !df->access_granted
        if (request == VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT.Number) return Attach(arg);
        if (request == VfioIoctl.VFIO_DEVICE_DETACH_IOMMUFD_PT.Number) return Detach(arg);
        return _inner!.Ioctl(request, arg);
    }

    public override int Ioctl(uint request, ulong value)
    {
        if (request == VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD.Number) return -Errno.EFAULT;
        if (_bound is null) return -Errno.EINVAL;
        if (request == VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT.Number || request == VfioIoctl.VFIO_DEVICE_DETACH_IOMMUFD_PT.Number) return -Errno.EFAULT;
        return _inner!.Ioctl(request, value);
    }

    /// <summary>vfio_df_ioctl_bind_iommufd.</summary>
    private int Bind(Span<byte> arg)
    {
        const int minsz = 16; // offsetofend(struct vfio_device_bind_iommufd, out_devid)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var bind = StructBytes.Read<vfio_device_bind_iommufd>(arg);
        if (bind.argsz < minsz || bind.flags != 0 || bind.iommufd < 0) return -Errno.EINVAL;
        // vfio_device_block_group: not while the group is open through /dev/vfio/N.
        if (_device.Group.File is not null) return -Errno.EBUSY;
        if (_bound is not null) return -Errno.EINVAL;                 // one device file binds once
        var file = Kernel.Lookup(bind.iommufd);
        if (file is null) return -Errno.EBADF;                         // iommufd_ctx_from_fd: fdget
        if (file is not SimIommufd ictx) return -Errno.EBADFD;         // not an iommufd
        // vfio_df_open: "Only the group path allows the device to be opened multiple times."
        if (_device.OpenCount > 0) return -Errno.EINVAL;
        int rc = _device.Open(out var inner, cdev: true);
        if (rc < 0) return rc;
        uint id = ictx.Bind(_device);
        _ictx = ictx;
        _bound = ictx.Objects[id];
        _inner = inner;
        _device.IommufdBinding = _bound;
        _device.Group.CdevBound++;
        bind.out_devid = id;
        StructBytes.Write(arg, bind);
        return 0;
    }

    /// <summary>vfio_df_ioctl_attach_pt.</summary>
    private int Attach(Span<byte> arg)
    {
        const int minsz = 12; // offsetofend(struct vfio_device_attach_iommufd_pt, pt_id)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var attach = StructBytes.Read<vfio_device_attach_iommufd_pt>(arg);
        if (attach.argsz < minsz || attach.flags != 0) return -Errno.EINVAL;
        _device.Tick();
        uint pt = attach.pt_id;
        int rc = _ictx!.Attach(_bound!, ref pt);
        if (rc < 0) return rc;
        attach.pt_id = pt;
        StructBytes.Write(arg, attach);
        return 0;
    }

    /// <summary>vfio_df_ioctl_detach_pt.</summary>
    private int Detach(Span<byte> arg)
    {
        const int minsz = 8;
        if (arg.Length < minsz) return -Errno.EFAULT;
        var detach = StructBytes.Read<vfio_device_detach_iommufd_pt>(arg);
        if (detach.argsz < minsz || detach.flags != 0) return -Errno.EINVAL;
        _device.Tick();
        _ictx!.Detach(_bound!);
        return 0;
    }

    public override long Pread(Span<byte> buffer, long offset) => _inner?.Pread(buffer, offset) ?? -Errno.EINVAL;

    public override long Pwrite(ReadOnlySpan<byte> buffer, long offset) => _inner?.Pwrite(buffer, offset) ?? -Errno.EINVAL;

    public override nint Mmap(nint length, long offset, int prot, int flags) => _inner?.Mmap(length, offset, prot, flags) ?? -Errno.EINVAL;

    public override short Poll(short events) => _inner?.Poll(events) ?? 0;

    /// <summary>vfio_device_fops_release: the device closes and is unbound (detached first).</summary>
    public override void Release()
    {
        if (_bound is null) return;
        _device.Tick();
        _ictx!.Unbind(_bound);
        _device.IommufdBinding = null;
        _device.Group.CdevBound--;
        _inner!.Release();
        _bound = null;
    }
}
