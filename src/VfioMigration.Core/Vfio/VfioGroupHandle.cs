using System;
using System.Linq;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>
/// An open VFIO group (/dev/vfio/N), owned by this process until disposed. A group can be open in one
/// process at a time: opening one another process holds fails with EBUSY, and the error names the holder.
/// </summary>
public sealed class VfioGroupHandle : IDisposable
{
    private VfioGroupHandle(VfioHost host, VfioGroupInfo info, SafeFd? fd)
    {
        Host = host;
        Info = info;
        _fd = fd;
    }

    private readonly SafeFd? _fd;

    public VfioHost Host { get; }

    /// <summary>What sysfs says about the group.</summary>
    public VfioGroupInfo Info { get; }

    public int Number => Info.Group;

    internal SafeFd Fd => _fd ?? throw new VfioRuleException("GroupNotOpen", $"group {Number} is used through its devices' cdevs (the iommufd backend), not through {Info.DevicePath}.");

    /// <summary>True when the group's devices are bound through their cdevs (the iommufd backend) and /dev/vfio/N stays closed.</summary>
    public bool ThroughCdev => _fd is null;

    /// <summary>
    /// True if every device of the group is an mdev (no IOMMU of its own): such groups start in the
    /// kernel's pinned-page dirty scope.
    /// </summary>
    public bool IsEmulatedIommu => Info.Devices.Length > 0 && Info.Devices.All(d => d.Bus == "mdev");

    /// <summary>
    /// The group as the iommufd backend uses it: found in sysfs and checked viable, but not opened (its devices
    /// are bound through their cdevs, which the kernel refuses while /dev/vfio/N is open).
    /// </summary>
    public static VfioGroupHandle ForCdev(VfioHost host, int number)
    {
        var info = Find(host, number);
        var foreign = info.Devices.Where(d => !d.BoundToVfio).Select(d => $"{d.Name} (on {d.Driver ?? "no driver"})").ToList();
        if (foreign.Count > 0)
            throw new VfioRuleException("GroupNotViable",
                $"group {number} is not viable: every device in it must be bound to a VFIO driver, and {string.Join(", ", foreign)} is not. Unbind it or bind it to vfio-pci.");
        return new VfioGroupHandle(host, info, null);
    }

    private static VfioGroupInfo Find(VfioHost host, int number)
    {
        var info = IommuGroupDiscovery.FindGroup(host.Kernel, number);
        if (info is null)
        {
            if (VfioAvailability.Missing(host) is { } missing) throw missing;
            throw new VfioRuleException("GroupNotFound", $"IOMMU group {number} does not exist on {host.Description} (Get-VfioGroup lists the groups there are).");
        }
        if (!info.DeviceNodeExists) throw new VfioRuleException("GroupNotBoundToVfio", VfioAvailability.NothingBound(info));
        return info;
    }

    /// <summary>Opens /dev/vfio/N, explaining EBUSY (who holds it), EACCES and ENOENT.</summary>
    public static VfioGroupHandle Open(VfioHost host, int number)
    {
        var info = IommuGroupDiscovery.FindGroup(host.Kernel, number);
        if (info is null)
        {
            // A host without VFIO (or without an IOMMU) has no group at all: say that, not just "no group 2".
            if (VfioAvailability.Missing(host) is { } missing) throw missing;
            throw new VfioRuleException("GroupNotFound", $"IOMMU group {number} does not exist on {host.Description} (Get-VfioGroup lists the groups there are).");
        }
        string path = info.DevicePath;
        if (!info.DeviceNodeExists) throw new VfioRuleException("GroupNotBoundToVfio", VfioAvailability.NothingBound(info));
        try
        {
            return new VfioGroupHandle(host, info, host.Open(path));
        }
        catch (VfioNativeException e) when (e.Errno == Errno.EBUSY)
        {
            var holders = GroupHolders.Find(host.Kernel.Files, number);
            string who = holders.Count > 0 ? $"it is held by {string.Join(", ", holders)}" : "another process holds it (/proc does not show which)";
            throw new VfioNativeException("open", Errno.EBUSY, path,
                $"{who}. A group can be open in one process only; this module drives devices its own process opened");
        }
        catch (VfioNativeException e) when (e.Errno is Errno.EACCES or Errno.EPERM)
        {
            throw new VfioNativeException("open", e.Errno, path,
                $"this process may not open {path} (owned by root, mode 0600 by default): run as root, or give your user access with a udev rule or chown, and raise the memlock limit (ulimit -l) for DMA mappings");
        }
    }

    /// <summary>VFIO_GROUP_GET_STATUS: (viable, attached to a container).</summary>
    public (bool Viable, bool ContainerSet) GetStatus()
    {
        var status = StructBytes.Buffer(new vfio_group_status { argsz = (uint)StructBytes.SizeOf<vfio_group_status>() });
        Host.Ioctl(Fd, VfioIoctl.VFIO_GROUP_GET_STATUS, status);
        uint flags = StructBytes.Read<vfio_group_status>(status).flags;
        return ((flags & VfioConstants.VFIO_GROUP_FLAGS_VIABLE) != 0, (flags & VfioConstants.VFIO_GROUP_FLAGS_CONTAINER_SET) != 0);
    }

    /// <summary>VFIO_GROUP_SET_CONTAINER.</summary>
    internal void SetContainer(SafeFd container)
    {
        var (viable, _) = GetStatus();
        if (!viable)
        {
            var foreign = Info.Devices.Where(d => !d.BoundToVfio).Select(d => $"{d.Name} (on {d.Driver ?? "no driver"})");
            throw new VfioRuleException("GroupNotViable",
                $"group {Number} is not viable: every device in it must be bound to a VFIO driver, and {string.Join(", ", foreign)} is not. Unbind it or bind it to vfio-pci.");
        }
        Host.Ioctl(Fd, VfioIoctl.VFIO_GROUP_SET_CONTAINER, BitConverter.GetBytes(container.Number));
    }

    /// <summary>VFIO_GROUP_UNSET_CONTAINER; failures are reported as errno (the group may have devices open).</summary>
    internal int UnsetContainer() => Host.TryIoctlValue(Fd, VfioIoctl.VFIO_GROUP_UNSET_CONTAINER, 0);

    /// <summary>VFIO_GROUP_GET_DEVICE_FD for a device of this group.</summary>
    public SafeFd OpenDevice(string name)
    {
        if (!Info.Devices.Any(d => string.Equals(d.Name, name, StringComparison.Ordinal)))
            throw new VfioRuleException("DeviceNotInGroup", $"device '{name}' is not in group {Number} (it holds {string.Join(", ", Info.Devices.Select(d => d.Name))}).");
        int fd = Host.Ioctl(Fd, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString(name));
        return Host.Adopt(fd, name);
    }

    public void Dispose() => _fd?.Dispose();

    public override string ToString() => _fd is null ? $"group {Number} (cdevs)" : Info.DevicePath;
}
