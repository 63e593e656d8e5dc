using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Discovery;

/// <summary>A device as sysfs shows it inside an IOMMU group.</summary>
public sealed class VfioGroupDevice
{
    /// <summary>PCI address (0000:00:02.0) or mdev UUID: the name VFIO_GROUP_GET_DEVICE_FD takes.</summary>
    public required string Name { get; init; }

    /// <summary>"pci", "mdev" or the bus sysfs names.</summary>
    public required string Bus { get; init; }

    /// <summary>PCI vendor id (0x1234), or null where sysfs has none (mdev).</summary>
    public int? VendorId { get; init; }

    /// <summary>PCI device id (0x11e8), or null where sysfs has none (mdev).</summary>
    public int? DeviceId { get; init; }

    /// <summary>The bound driver (vfio-pci, mtty, e1000e ...) or null if none is bound.</summary>
    public string? Driver { get; init; }

    /// <summary>For an mdev: its type (mtty-2); otherwise null.</summary>
    public string? MdevType { get; init; }

    /// <summary>The IOMMU group number.</summary>
    public required int Group { get; init; }

    /// <summary>True if the device is bound to a VFIO driver (vfio-pci, a vfio-pci variant, or an mdev driver).</summary>
    public bool BoundToVfio => Driver is not null && (Driver.Contains("vfio", StringComparison.Ordinal) || Bus == "mdev");

    public override string ToString() => Name;
}

/// <summary>An IOMMU group as sysfs and /dev/vfio show it.</summary>
public sealed class VfioGroupInfo
{
    /// <summary>The group number.</summary>
    public required int Group { get; init; }

    /// <summary>/dev/vfio/N, the node a process opens to own the group.</summary>
    public required string DevicePath { get; init; }

    /// <summary>True if /dev/vfio/N exists (the group's devices are bound to VFIO drivers).</summary>
    public required bool DeviceNodeExists { get; init; }

    /// <summary>The devices in the group.</summary>
    public required VfioGroupDevice[] Devices { get; init; }

    /// <summary>Which host answered: Linux (this machine) or Simulated.</summary>
    public required HostKind HostKind { get; init; }

    /// <summary>The host's readable name.</summary>
    public required string Host { get; init; }

    /// <summary>The group's device of this name (PCI address or mdev UUID, case-insensitive), or null.</summary>
    public VfioGroupDevice? FindDevice(string name)
    {
        foreach (var d in Devices) if (string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase)) return d;
        return null;
    }

    public override string ToString() => Group.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Lists IOMMU groups from sysfs (<c>/sys/kernel/iommu_groups</c>) through the seam's file view, so the
/// same code reads the real sysfs or the simulated host's.
/// </summary>
public static class IommuGroupDiscovery
{
    public const string GroupsRoot = "/sys/kernel/iommu_groups";
    public const string VfioDevRoot = "/dev/vfio";

    /// <summary>True if the VFIO container node exists, i.e. the vfio module is loaded.</summary>
    public static bool IsVfioPresent(IVfioKernel kernel) => kernel.Files.Exists(VfioHost.ContainerPath);

    /// <summary>All groups, ordered by number.</summary>
    public static IReadOnlyList<VfioGroupInfo> GetGroups(IVfioKernel kernel)
    {
        var groups = new List<VfioGroupInfo>();
        foreach (string name in kernel.Files.List(GroupsRoot))
        {
            if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int number))
                groups.Add(GetGroup(kernel, number));
        }
        return groups.OrderBy(g => g.Group).ToArray();
    }

    /// <summary>One group by number, or null if sysfs has no such group.</summary>
    /// <summary>The device of this name and its group among <paramref name="groups"/>, or null: the one device-to-group lookup.</summary>
    public static (VfioGroupInfo Group, VfioGroupDevice Device)? FindDevice(IEnumerable<VfioGroupInfo> groups, string name)
    {
        foreach (var g in groups)
            if (g.FindDevice(name) is { } d) return (g, d);
        return null;
    }

    /// <summary>The message of a device that is in no IOMMU group of the host, with what to check.</summary>
    public static string NotFoundMessage(string name, string hostDescription) =>
        $"Device '{name}' is in no IOMMU group on {hostDescription}; check the PCI address (lspci -D) or the mdev UUID.";

    public static VfioGroupInfo? FindGroup(IVfioKernel kernel, int number) =>
        kernel.Files.DirectoryExists($"{GroupsRoot}/{number}") ? GetGroup(kernel, number) : null;

    private static VfioGroupInfo GetGroup(IVfioKernel kernel, int number)
    {
        var files = kernel.Files;
        string devicesDir = $"{GroupsRoot}/{number}/devices";
        var devices = files.List(devicesDir).Select(d => ReadDevice(files, devicesDir, d, number)).ToArray();
        string node = $"{VfioDevRoot}/{number}";
        return new VfioGroupInfo
        {
            Group = number,
            DevicePath = node,
            DeviceNodeExists = files.Exists(node),
            Devices = devices,
            HostKind = kernel.Kind,
            Host = kernel.Description,
        };
    }

    private static VfioGroupDevice ReadDevice(IHostFiles files, string devicesDir, string name, int group)
    {
        string path = $"{devicesDir}/{name}";
        string? subsystem = LastSegment(files.ReadLink(path + "/subsystem"));
        string bus = subsystem ?? (IsPciAddress(name) ? "pci" : "unknown");
        return new VfioGroupDevice
        {
            Name = name,
            Bus = bus,
            VendorId = ParseHex(files.ReadText(path + "/vendor")),
            DeviceId = ParseHex(files.ReadText(path + "/device")),
            Driver = LastSegment(files.ReadLink(path + "/driver")),
            MdevType = bus == "mdev" ? LastSegment(files.ReadLink(path + "/mdev_type")) : null,
            Group = group,
        };
    }

    private static string? LastSegment(string? link)
    {
        if (string.IsNullOrEmpty(link)) return null;
        int slash = link.TrimEnd('/').LastIndexOf('/');
        return slash < 0 ? link : link.Substring(slash + 1);
    }

    private static int? ParseHex(string? text)
    {
        if (text is null) return null;
        string t = text.Trim();
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) t = t.Substring(2);
        return int.TryParse(t, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v) ? v : null;
    }

    /// <summary>True for a PCI address such as 0000:00:02.0.</summary>
    public static bool IsPciAddress(string name) => VfioHost.IsPciAddress(name);
}
