using System;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// A fresh container and a group: API version, extensions, group status, attach, SET_IOMMU, and what the
/// container answers before it has an IOMMU driver and after its last group left (kernel-interface.md lab 7.1
/// "== container" and "== group", section 9; the rest from drivers/vfio/container.c and group.c).
/// </summary>
public sealed class ContainerScenario : ConformanceScenario
{
    public override string Name => "container";

    public override bool AppliesTo(ConformanceTarget target) => target.IommuGroup is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        using var container = host.Open(VfioHost.ContainerPath);
        r.Result("VFIO_GET_API_VERSION", host.TryIoctlValue(container, VfioIoctl.VFIO_GET_API_VERSION, 0));
        for (uint ext = 1; ext <= 10; ext++)
            r.Result($"VFIO_CHECK_EXTENSION({ext})", host.TryIoctlValue(container, VfioIoctl.VFIO_CHECK_EXTENSION, ext));
        r.Result("VFIO_SET_IOMMU without a group", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));

        using var group = host.Open($"/dev/vfio/{target.IommuGroup}");
        var status = StructBytes.Buffer(new vfio_group_status { argsz = 8 });
        r.Result("VFIO_GROUP_GET_STATUS", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_GET_STATUS, status));
        r.Record("group flags", "0x" + StructBytes.Read<vfio_group_status>(status).flags.ToString("x"));

        var small = StructBytes.Buffer(new vfio_group_status { argsz = 4 });
        r.Result("VFIO_GROUP_GET_STATUS argsz=4", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_GET_STATUS, small));

        r.Result("VFIO_GROUP_GET_DEVICE_FD before SET_CONTAINER", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString(target.IommuDevice ?? "none")));

        var fdArg = BitConverter.GetBytes(container.Number);
        r.Result("VFIO_GROUP_SET_CONTAINER", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_SET_CONTAINER, fdArg));
        r.Result("VFIO_GROUP_SET_CONTAINER again", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_SET_CONTAINER, fdArg));
        r.Result("VFIO_GROUP_GET_STATUS attached", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_GET_STATUS, status));
        r.Record("group flags attached", "0x" + StructBytes.Read<vfio_group_status>(status).flags.ToString("x"));

        // container.c vfio_fops_unl_ioctl: without an IOMMU driver every other ioctl answers EINVAL.
        r.Result("VFIO_IOMMU_GET_INFO before SET_IOMMU", Type1Calls.GetInfo(host, container, 24, out _));
        r.Result("VFIO_GROUP_GET_DEVICE_FD before SET_IOMMU", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString(target.IommuDevice ?? "none")));

        r.Result("VFIO_SET_IOMMU(42)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, 42));
        r.Result("VFIO_SET_IOMMU(TYPE1v2)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        // vfio_ioctl_set_iommu refuses a container that already has a driver with EINVAL (there is no EBUSY).
        r.Result("VFIO_SET_IOMMU(TYPE1v2) again", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        // Once a driver is set, CHECK_EXTENSION asks only that driver, with its state (UPDATE_VADDR: no mdev here).
        for (uint ext = 1; ext <= 10; ext++)
            r.Result($"VFIO_CHECK_EXTENSION({ext}) after SET_IOMMU", host.TryIoctlValue(container, VfioIoctl.VFIO_CHECK_EXTENSION, ext));

        try
        {
            using var again = host.Open($"/dev/vfio/{target.IommuGroup}");
            r.Record("open group twice", "0");
        }
        catch (VfioNativeException e)
        {
            r.Record("open group twice", e.ErrnoName);
        }

        r.Result("VFIO_GROUP_GET_DEVICE_FD unknown name", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString("0000:ff:1f.7")));
        r.Result("VFIO_GROUP_UNSET_CONTAINER", host.TryIoctlValue(group, VfioIoctl.VFIO_GROUP_UNSET_CONTAINER, 0));
        r.Result("VFIO_GROUP_UNSET_CONTAINER again", host.TryIoctlValue(group, VfioIoctl.VFIO_GROUP_UNSET_CONTAINER, 0));

        // "Detaching the last group deprivileges a container, remove iommu": no driver, and no group to set one.
        r.Result("VFIO_IOMMU_GET_INFO after the last group left", Type1Calls.GetInfo(host, container, 24, out _));
        r.Result("VFIO_SET_IOMMU(TYPE1v2) after the last group left", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        r.Result("VFIO_GROUP_SET_CONTAINER after the last group left", host.TryIoctl(group, VfioIoctl.VFIO_GROUP_SET_CONTAINER, fdArg));
        r.Result("VFIO_SET_IOMMU(TYPE1v2) once more", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
    }
}
