using System;
using System.Collections.Generic;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// An open /dev/vfio/vfio with the type1 IOMMU driver (drivers/vfio/container.c and vfio_iommu_type1.c).
/// SKELETON: only the container-level ioctls are here yet; type1 (GET_INFO, MAP/UNMAP, DIRTY_PAGES)
/// is being written.
/// </summary>
internal sealed class SimContainer : SimFile
{
    private readonly List<SimGroup> _groups = new();

    public SimContainer(SimulatedKernel kernel) : base(kernel) { }

    public override SimFileKind Kind => SimFileKind.Container;

    public override string Name => VfioMigration.Core.Kernel.VfioHost.ContainerPath;

    /// <summary>True once VFIO_SET_IOMMU succeeded.</summary>
    public bool HasIommuDriver { get; private set; }

    /// <summary>The groups attached (VFIO_GROUP_SET_CONTAINER).</summary>
    public IReadOnlyList<SimGroup> AttachedGroups => _groups;

    /// <summary>Called by VFIO_GROUP_SET_CONTAINER; 0 or -errno.</summary>
    public int AttachGroup(SimGroup group)
    {
        _groups.Add(group);
        return 0;
    }

    /// <summary>Called by VFIO_GROUP_UNSET_CONTAINER and when a group file is closed.</summary>
    public void DetachGroup(SimGroup group)
    {
        _groups.Remove(group);
        if (_groups.Count == 0) HasIommuDriver = false;
    }

    public IReadOnlyList<(ulong Iova, ulong Size)> MappedRanges => Array.Empty<(ulong Iova, ulong Size)>(); // stub: the type1 helper replaces it
    /// <summary>vfio_pin_pages from a device of an attached group: 0 or -errno.</summary>
    public int PinPages(ulong iova, int pages) => -Errno.EINVAL;

    /// <summary>vfio_unpin_pages.</summary>
    public void UnpinPages(ulong iova, int pages) { }

    /// <summary>vfio_dma_rw write by a device: marks the pages dirty in pinned-page scope; 0 or -errno.</summary>
    public int DmaWrite(ulong iova, ulong length) => -Errno.EINVAL;

    public override int Ioctl(uint request, ulong value)
    {
        if (request == VfioIoctl.VFIO_GET_API_VERSION.Number) return VfioIoctl.VFIO_API_VERSION;
        if (request == VfioIoctl.VFIO_CHECK_EXTENSION.Number) return CheckExtension(value);
        if (request == VfioIoctl.VFIO_SET_IOMMU.Number)
        {
            if (_groups.Count == 0) return -Errno.EINVAL;
            if (HasIommuDriver) return -Errno.EBUSY;
            if (value != VfioConstants.VFIO_TYPE1_IOMMU && value != VfioConstants.VFIO_TYPE1v2_IOMMU) return -Errno.ENODEV;
            HasIommuDriver = true;
            return 0;
        }
        return -Errno.ENOTTY;
    }

    private static int CheckExtension(ulong extension) => extension switch
    {
        VfioConstants.VFIO_TYPE1_IOMMU or VfioConstants.VFIO_TYPE1v2_IOMMU or VfioConstants.VFIO_TYPE1_NESTING_IOMMU or VfioConstants.VFIO_UNMAP_ALL => 1,
        _ => 0,
    };

    public override void Release()
    {
        foreach (var g in _groups.ToArray()) g.Container = null;
        _groups.Clear();
    }
}
