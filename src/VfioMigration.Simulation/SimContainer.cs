using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation.Type1;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// An open /dev/vfio/vfio: the container of drivers/vfio/container.c, whose IOMMU driver, once
/// VFIO_SET_IOMMU chose it, is the type1 driver of <see cref="Type1Iommu"/>. Like the kernel's container it
/// outlives its descriptor while groups hold it, and it loses its driver (and every mapping) when the last
/// group leaves.
/// </summary>
internal sealed class SimContainer : SimFile
{
    // container->group_list; the kernel adds at the head, so SET_IOMMU attaches the newest group first.
    private readonly List<SimGroup> _groups = new();
    private Type1Iommu? _iommu;

    public SimContainer(SimulatedKernel kernel) : base(kernel) { }

    public override SimFileKind Kind => SimFileKind.Container;

    public override string Name => VfioMigration.Core.Kernel.VfioHost.ContainerPath;

    /// <summary>True once VFIO_SET_IOMMU succeeded, until the last group leaves.</summary>
    public bool HasIommuDriver => _iommu is not null;

    /// <summary>The groups attached (VFIO_GROUP_SET_CONTAINER), in attach order.</summary>
    public IReadOnlyList<SimGroup> AttachedGroups => _groups;

    /// <summary>The container's DMA mappings (IOVA, size) in IOVA order: where a device model may pin pages or write.</summary>
    public IReadOnlyList<(ulong Iova, ulong Size)> MappedRanges
    {
        get
        {
            lock (Kernel.SyncRoot)
                return _iommu is null ? Array.Empty<(ulong, ulong)>() : _iommu.Mappings.Select(m => (m.Iova, m.Size)).ToArray();
        }
    }

    /// <summary>
    /// Vendor drivers' dma_unmap callback (vfio_notify_dma_unmap): a mapping holding pinned pages is being
    /// unmapped, (iova, size); the driver must unpin its pages in it. Whatever stays pinned is released anyway.
    /// </summary>
    internal event Action<ulong, ulong>? DmaUnmapping;

    /// <summary>The type1 driver state, for tests (null before SET_IOMMU and after the last group left).</summary>
    internal Type1Iommu? Iommu => _iommu;

    /// <summary>vfio_container_attach_group, called by VFIO_GROUP_SET_CONTAINER: 0 or -errno.</summary>
    public int AttachGroup(SimGroup group)
    {
        lock (Kernel.SyncRoot)
        {
            if (_iommu is not null)
            {
                int rc = _iommu.AttachGroup(group);
                if (rc < 0) return rc;
            }
            _groups.Add(group);
            return 0;
        }
    }

    /// <summary>vfio_group_detach_container, called by VFIO_GROUP_UNSET_CONTAINER and when a group file is closed.</summary>
    public void DetachGroup(SimGroup group)
    {
        lock (Kernel.SyncRoot)
        {
            if (!_groups.Remove(group)) return;
            _iommu?.DetachGroup(group);
            // "Detaching the last group deprivileges a container, remove iommu"
            if (_iommu is not null && _groups.Count == 0)
            {
                _iommu.Release();
                _iommu = null;
            }
        }
    }

    /// <summary>
    /// vfio_pin_pages from a device of an attached group: pins <paramref name="pages"/> pages from
    /// <paramref name="iova"/> (page aligned, at most 512 per call). 0, or -errno with nothing pinned:
    /// EINVAL if a page lies outside every mapping, E2BIG above 512 pages, EPERM on a mapping that is not
    /// read-write, EFAULT if the mapping's user memory is gone, EACCES in a TYPE1 (v1) container.
    /// While dirty tracking runs a pinned page reads dirty on every GET_BITMAP until it is unpinned.
    /// </summary>
    public int PinPages(ulong iova, int pages)
    {
        lock (Kernel.SyncRoot)
            return _iommu is null ? -Errno.ENOTTY : _iommu.PinPages(iova, pages);
    }

    /// <summary>vfio_unpin_pages: releases one pin per page.</summary>
    public void UnpinPages(ulong iova, int pages)
    {
        lock (Kernel.SyncRoot) _iommu?.UnpinPages(iova, pages);
    }

    /// <summary>
    /// vfio_dma_rw write by a device: 0 or -errno (EINVAL where no mapping, EPERM on a mapping that is not
    /// read-write). While dirty tracking runs the pages read dirty once: the next read clears them.
    /// </summary>
    public int DmaWrite(ulong iova, ulong length)
    {
        lock (Kernel.SyncRoot)
            return _iommu is null ? -Errno.ENOTTY : _iommu.DmaWrite(iova, length);
    }

    public override int Ioctl(uint request, Span<byte> arg)
    {
        // The integer ioctls read their argument as a number; here it would be the buffer's user address,
        // which no extension or IOMMU type equals.
        if (IsIntegerIoctl(request)) return Ioctl(request, ulong.MaxValue);
        if (_iommu is null) return -Errno.EINVAL;               // vfio_fops_unl_ioctl: no driver, ret stays -EINVAL
        if (request == VfioIoctl.VFIO_IOMMU_GET_INFO.Number) return _iommu.GetInfo(arg);
        if (request == VfioIoctl.VFIO_IOMMU_MAP_DMA.Number) return _iommu.MapDma(arg);
        if (request == VfioIoctl.VFIO_IOMMU_UNMAP_DMA.Number) return _iommu.UnmapDma(arg);
        if (request == VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Number) return _iommu.DirtyPages(arg);
        return -Errno.ENOTTY;                                   // vfio_iommu_type1_ioctl default
    }

    public override int Ioctl(uint request, ulong value)
    {
        if (request == VfioIoctl.VFIO_GET_API_VERSION.Number) return VfioIoctl.VFIO_API_VERSION;
        if (request == VfioIoctl.VFIO_CHECK_EXTENSION.Number) return Type1Iommu.CheckExtension(_iommu, value);
        if (request == VfioIoctl.VFIO_SET_IOMMU.Number) return SetIommu(value);
        if (_iommu is null) return -Errno.EINVAL;
        // A struct ioctl given a number: the driver copies from that "pointer" and faults
        // (VFIO_IOMMU_DIRTY_PAGES refuses a v1 container before it looks at its argument).
        if (request == VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Number && !_iommu.V2) return -Errno.EACCES;
        if (request == VfioIoctl.VFIO_IOMMU_GET_INFO.Number || request == VfioIoctl.VFIO_IOMMU_MAP_DMA.Number
            || request == VfioIoctl.VFIO_IOMMU_UNMAP_DMA.Number || request == VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Number)
            return -Errno.EFAULT;
        return -Errno.ENOTTY;
    }

    private static bool IsIntegerIoctl(uint request) =>
        request == VfioIoctl.VFIO_GET_API_VERSION.Number || request == VfioIoctl.VFIO_CHECK_EXTENSION.Number
        || request == VfioIoctl.VFIO_SET_IOMMU.Number;

    /// <summary>vfio_ioctl_set_iommu.</summary>
    private int SetIommu(ulong type)
    {
        // "only by adding a group to a container does the user get the privilege of enabling the iommu";
        // and there is no unset_iommu: a second SET_IOMMU is refused the same way.
        if (_groups.Count == 0 || _iommu is not null) return -Errno.EINVAL;

        int ret = -Errno.ENODEV;
        // The one registered driver (no vfio-noiommu in the lab's kernel): it must claim the type first.
        if (Type1Iommu.CheckExtension(null, type) <= 0) return ret;
        ret = Type1Iommu.Open(type, Kernel.Configuration, out var iommu);
        if (ret < 0) return ret;

        // __vfio_container_attach_groups walks group_list from its head: the newest group first.
        var attached = new List<SimGroup>();
        for (int i = _groups.Count - 1; i >= 0; i--)
        {
            ret = iommu!.AttachGroup(_groups[i]);
            if (ret < 0)
            {
                for (int j = attached.Count - 1; j >= 0; j--) iommu.DetachGroup(attached[j]);
                return ret;
            }
            attached.Add(_groups[i]);
        }
        iommu!.BeforeDirtyRead = TickDevices;
        iommu.DmaUnmapNotify = (iova, size) => DmaUnmapping?.Invoke(iova, size);
        _iommu = iommu;
        return 0;
    }

    /// <summary>Brings every device of every attached group up to the simulated clock before dirty state is read.</summary>
    private void TickDevices()
    {
        foreach (var group in _groups.ToArray())
            foreach (var device in group.Devices)
                device.Tick();
    }

    /// <summary>
    /// Closing the container's descriptor does not detach its groups (vfio_fops_release only drops the
    /// file's reference): the groups keep the container, its driver and its mappings until they leave.
    /// </summary>
    public override void Release() { }
}
