using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// A simulated IOMMU group (drivers/vfio/group.c): one open file at a time, attached to at most one
/// container, and the way to a device's file descriptor.
/// </summary>
internal sealed class SimGroup
{
    public SimGroup(SimulatedKernel kernel, SimGroupConfig config)
    {
        Kernel = kernel;
        Config = config;
        Devices = config.Devices.Select(d => new SimDevice(kernel, this, d)).ToArray();
    }

    public SimulatedKernel Kernel { get; }

    public SimGroupConfig Config { get; }

    public int Number => Config.Number;

    public SimDevice[] Devices { get; }

    /// <summary>/dev/vfio/N exists once a device of the group is bound to a VFIO driver.</summary>
    public bool HasDeviceNode => Config.Devices.Any(d => d.BoundToVfio);

    /// <summary>Viable: every device is bound to a VFIO driver (else a host driver owns DMA for the group).</summary>
    public bool Viable => Config.Devices.All(d => d.BoundToVfio);

    /// <summary>An mdev group: no IOMMU of its own (VFIO_EMULATED_IOMMU); it starts in pinned-page dirty scope.</summary>
    public bool IsEmulatedIommu => Config.Devices.All(d => d.Bus == SimBus.Mdev);

    /// <summary>The open group file, if any.</summary>
    public SimGroupFile? File { get; private set; }

    /// <summary>The container the group is attached to, if any.</summary>
    public SimContainer? Container { get; set; }

    /// <summary>Open device descriptors of this group (UNSET_CONTAINER answers EBUSY while any is open).</summary>
    public int OpenDevices { get; set; }

    /// <summary>Devices of the group bound through their cdev (group->cdev_device_open_cnt): the group cannot be opened then.</summary>
    public int CdevBound { get; set; }

    public int OpenFile(out SimGroupFile? file)
    {
        file = null;
        // vfio_group_fops_open: one opener at a time ("Do we need multiple instances of the group open? Seems not.").
        // vfio_group_open: also refused while a device of the group is bound through its cdev.
        if (Config.HeldBy is not null || File is not null || CdevBound > 0) return -Errno.EBUSY;
        file = File = new SimGroupFile(Kernel, this);
        return 0;
    }

    public void FileReleased()
    {
        File = null;
        Container?.DetachGroup(this);
        Container = null;
    }
}

/// <summary>An open /dev/vfio/N.</summary>
internal sealed class SimGroupFile : SimFile
{
    private readonly SimGroup _group;

    public SimGroupFile(SimulatedKernel kernel, SimGroup group) : base(kernel) => _group = group;

    public override SimFileKind Kind => SimFileKind.Group;

    public override string Name => $"/dev/vfio/{_group.Number}";

    public override int Ioctl(uint request, Span<byte> arg)
    {
        if (request == VfioIoctl.VFIO_GROUP_GET_STATUS.Number) return GetStatus(arg);
        if (request == VfioIoctl.VFIO_GROUP_SET_CONTAINER.Number) return SetContainer(arg);
        if (request == VfioIoctl.VFIO_GROUP_UNSET_CONTAINER.Number) return UnsetContainer();
        if (request == VfioIoctl.VFIO_GROUP_GET_DEVICE_FD.Number) return GetDeviceFd(arg);
        return -Errno.ENOTTY;
    }

    public override int Ioctl(uint request, ulong value)
    {
        // UNSET_CONTAINER takes no argument; the others need a pointer, and a bad one faults.
        if (request == VfioIoctl.VFIO_GROUP_UNSET_CONTAINER.Number) return UnsetContainer();
        if (request == VfioIoctl.VFIO_GROUP_GET_STATUS.Number || request == VfioIoctl.VFIO_GROUP_SET_CONTAINER.Number
            || request == VfioIoctl.VFIO_GROUP_GET_DEVICE_FD.Number) return -Errno.EFAULT;
        return -Errno.ENOTTY;
    }

    private int GetStatus(Span<byte> arg)
    {
        if (arg.Length < 8) return -Errno.EFAULT;
        var status = StructBytes.Read<vfio_group_status>(arg);
        if (status.argsz < 8) return -Errno.EINVAL;
        status.flags = 0;
        if (_group.Container is not null) status.flags = VfioConstants.VFIO_GROUP_FLAGS_CONTAINER_SET | VfioConstants.VFIO_GROUP_FLAGS_VIABLE;
        else if (_group.Viable) status.flags = VfioConstants.VFIO_GROUP_FLAGS_VIABLE;
        StructBytes.Write(arg, status);
        return 0;
    }

    private int SetContainer(Span<byte> arg)
    {
        if (arg.Length < 4) return -Errno.EFAULT;
        int fd = BitConverter.ToInt32(arg);
        if (_group.Container is not null) return -Errno.EINVAL;
        var file = Kernel.Lookup(fd);
        if (file is null) return -Errno.EBADF;
        if (file is not SimContainer container) return -Errno.EINVAL;
        // iommu_group_claim_dma_owner: a host driver still owns DMA for a device of the group.
        if (!_group.Viable) return -Errno.EPERM;
        int rc = container.AttachGroup(_group);
        if (rc < 0) return rc;
        _group.Container = container;
        return 0;
    }

    private int UnsetContainer()
    {
        if (_group.Container is null) return -Errno.EINVAL;
        if (_group.OpenDevices > 0) return -Errno.EBUSY;
        _group.Container.DetachGroup(_group);
        _group.Container = null;
        return 0;
    }

    private int GetDeviceFd(Span<byte> arg)
    {
        int nul = arg.IndexOf((byte)0);
        if (nul < 0) return -Errno.EFAULT;
        string name = Encoding.UTF8.GetString(arg.Slice(0, nul));
        var device = _group.Devices.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.Ordinal));
        if (device is null) return -Errno.ENODEV;
        if (_group.Container is null || !_group.Container.HasIommuDriver) return -Errno.EINVAL;
        int rc = device.Open(out var file);
        if (rc < 0) return rc;
        _group.OpenDevices++;
        return Kernel.Install(file!);
    }

    public override void Release() => _group.FileReleased();
}
