using System.Linq;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Discovery;

/// <summary>
/// Why a host cannot give this process VFIO, in the words of what to do: the first thing a person meets on
/// a laptop, a CI runner or a cloud VM, where the answer of open() alone (ENOENT) says nothing.
/// </summary>
public static class VfioAvailability
{
    /// <summary>The sentence every diagnosis ends with: how to go on without VFIO.</summary>
    public const string Rehearse = "To rehearse without VFIO, use the simulated host that ships with the module: Connect-VfioHost -Simulated.";

    /// <summary>
    /// Null if /dev/vfio/vfio exists, else the error that says what is missing (NoIommu when the kernel
    /// shows no IOMMU groups, VfioNotPresent when the vfio modules are not loaded) and how to rehearse.
    /// </summary>
    public static VfioRuleException? Missing(VfioHost host)
    {
        var files = host.Kernel.Files;
        if (IommuGroupDiscovery.IsVfioPresent(host.Kernel)) return null;
        bool groups = files.List("/sys/kernel/iommu_groups").Length > 0;
        bool vfioLoaded = files.DirectoryExists("/sys/module/vfio");
        if (!groups)
        {
            return new VfioRuleException(ErrorIds.NoIommu,
                $"{host.Description} has no IOMMU groups (/sys/kernel/iommu_groups is empty), so no device can be given to VFIO: the IOMMU is off. " +
                "Turn on VT-d or AMD-Vi in the firmware and boot with intel_iommu=on (or amd_iommu=on) iommu=pt; in a virtual machine, give it a virtual IOMMU " +
                $"(QEMU: -device intel-iommu). {Rehearse}");
        }
        return new VfioRuleException(ErrorIds.VfioNotPresent,
            vfioLoaded
                ? $"{host.Description} has IOMMU groups and the vfio module, but no {VfioHost.ContainerPath}: /dev is not the host's (a container without the device node?). Give this process /dev/vfio. {Rehearse}"
                : $"{host.Description} has IOMMU groups but the vfio modules are not loaded ({VfioHost.ContainerPath} does not exist): modprobe vfio-pci, then bind devices to it (driverctl set-override <address> vfio-pci). {Rehearse}");
    }

    /// <summary>For a host with VFIO but a group without its node: what to bind (the group's devices and their drivers).</summary>
    public static string NothingBound(VfioGroupInfo group) =>
        $"group {group.Group} has no {group.DevicePath}: none of its devices ({string.Join(", ", group.Devices.Select(d => $"{d.Name} on {d.Driver ?? "no driver"}"))}) is bound to a VFIO driver. " +
        "Bind them to vfio-pci (driverctl set-override <address> vfio-pci, or echo vfio-pci > /sys/bus/pci/devices/<address>/driver_override and reprobe).";
}
