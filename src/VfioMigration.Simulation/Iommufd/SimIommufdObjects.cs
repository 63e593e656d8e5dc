using System;
using System.Collections.Generic;
using System.Linq;

namespace VfioMigration.Core.Simulation.Iommufd;

/// <summary>An object of an iommufd context (struct iommufd_object): its id in the context's xarray.</summary>
internal abstract class SimIommufdObject
{
    public uint Id { get; set; }

    /// <summary>enum iommufd_object_type, for messages.</summary>
    public abstract string Type { get; }

    /// <summary>Other objects holding this one (obj->users): IOMMU_DESTROY answers EBUSY while any do.</summary>
    public abstract bool InUse { get; }
}

/// <summary>One area of an io_pagetable: user memory mapped at an IOVA by one IOMMU_IOAS_MAP.</summary>
internal sealed record SimIoptArea(ulong Iova, ulong Length, ulong UserVa, bool Writeable)
{
    public ulong Last => Iova + Length - 1;
}

/// <summary>
/// IOMMUFD_OBJ_IOAS and its io_pagetable (drivers/iommu/iommufd/io_pagetable.c): the areas in IOVA order,
/// the reserved ranges (the domains' aperture, the attached devices' reserved regions) and the alignment.
/// </summary>
internal sealed class SimIoas : SimIommufdObject
{
    public override string Type => "IOAS";

    public SortedList<ulong, SimIoptArea> Areas { get; } = new();

    /// <summary>The paging HWPTs (iommu domains) of the IOAS: each holds every area.</summary>
    public List<SimHwpt> Hwpts { get; } = new();

    /// <summary>Emulated devices (mdev accesses) attached: they pin pages of it by IOVA.</summary>
    public List<SimIommufdAccess> Accesses { get; } = new();

    public override bool InUse => Hwpts.Count > 0 || Accesses.Count > 0;

    /// <summary>iopt->iova_alignment: 1 for a fresh IOAS, the smallest IOMMU page (4 KiB) once a domain or access is added.</summary>
    public ulong IovaAlignment => Hwpts.Count > 0 || Accesses.Count > 0 ? 4096UL : 1UL;

    /// <summary>The reserved ranges (inclusive), given the host's usable IOVA ranges behind its IOMMU.</summary>
    public List<(ulong Start, ulong Last)> Reserved(SimHostConfiguration c)
    {
        var reserved = new List<(ulong, ulong)>();
        if (c.IovaRanges.Count == 0) return reserved;
        ulong apertureEnd = c.IovaRanges.Max(r => r.End);
        // iopt_table_add_domain: everything past the domain's aperture.
        if (Hwpts.Count > 0 && apertureEnd != ulong.MaxValue) reserved.Add((apertureEnd + 1, ulong.MaxValue));
        // iopt_table_enforce_dev_resv_regions at attach: the reserved regions of each attached device (the MSI
        // window on x86): the holes between the host's usable ranges.
        if (Hwpts.Any(h => h.Devices.Count > 0))
        {
            var sorted = c.IovaRanges.OrderBy(r => r.Start).ToList();
            if (sorted[0].Start > 0) reserved.Add((0, sorted[0].Start - 1));
            for (int i = 1; i < sorted.Count; i++)
                if (sorted[i].Start > sorted[i - 1].End + 1) reserved.Add((sorted[i - 1].End + 1, sorted[i].Start - 1));
        }
        return reserved.OrderBy(r => r.Item1).ToList();
    }

    /// <summary>The allowed IOVA ranges: the holes of the reserved tree over [0, ULONG_MAX].</summary>
    public List<(ulong Start, ulong Last)> Allowed(SimHostConfiguration c)
    {
        var holes = new List<(ulong, ulong)>();
        ulong next = 0;
        bool done = false;
        foreach (var (start, last) in Reserved(c))
        {
            if (start > next) holes.Add((next, start - 1));
            if (last == ulong.MaxValue) { done = true; break; }
            next = Math.Max(next, last + 1);
        }
        if (!done) holes.Add((next, ulong.MaxValue));
        return holes;
    }

    /// <summary>The first area that intersects [start, last], or null (iopt_area_iter_first).</summary>
    public SimIoptArea? FirstIntersecting(ulong start, ulong last) =>
        Areas.Values.FirstOrDefault(a => a.Iova <= last && a.Last >= start);
}

/// <summary>
/// IOMMUFD_OBJ_HWPT_PAGING: an iommu_domain holding the mappings of its IOAS. Its dirty bits are the IOPTEs'
/// D bits, one per 4 KiB page: set by device writes only while tracking is enabled (the hardware sets them
/// only then), read and cleared (or only read) by IOMMU_HWPT_GET_DIRTY_BITMAP.
/// </summary>
internal sealed class SimHwpt : SimIommufdObject
{
    public SimHwpt(SimIoas ioas, bool auto, bool dirtyOps)
    {
        Ioas = ioas;
        Auto = auto;
        DirtyOps = dirtyOps;
    }

    public override string Type => "HWPT_PAGING";

    public SimIoas Ioas { get; }

    /// <summary>Allocated by the kernel for an attach to an IOAS (an auto domain), not by IOMMU_HWPT_ALLOC.</summary>
    public bool Auto { get; }

    /// <summary>The domain has dirty_ops: allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING.</summary>
    public bool DirtyOps { get; }

    /// <summary>IOMMU_HWPT_SET_DIRTY_TRACKING enabled it.</summary>
    public bool DirtyEnabled { get; set; }

    /// <summary>IOVAs (4 KiB aligned) whose IOPTE has its dirty bit set.</summary>
    public HashSet<ulong> DirtyPages { get; } = new();

    public List<SimIommufdDevice> Devices { get; } = new();

    public override bool InUse => Devices.Count > 0;

    /// <summary>A device wrote the page at <paramref name="iova"/> through this domain.</summary>
    public void DmaWrite(ulong iova)
    {
        ulong page = iova & ~4095UL;
        var area = Ioas.FirstIntersecting(page, page);
        if (area is null || !area.Writeable) return;   // an IOMMU fault, not a write
        if (DirtyEnabled) DirtyPages.Add(page);
    }

    /// <summary>The writeable mapped ranges a device attached here can write.</summary>
    public IReadOnlyList<(ulong Iova, ulong Size)> WriteableRanges =>
        Ioas.Areas.Values.Where(a => a.Writeable).Select(a => (a.Iova, a.Length)).ToArray();
}

/// <summary>IOMMUFD_OBJ_DEVICE: a physical device bound by VFIO_DEVICE_BIND_IOMMUFD (iommufd_device_bind).</summary>
internal sealed class SimIommufdDevice : SimIommufdObject
{
    public SimIommufdDevice(SimDevice device) => Device = device;

    public override string Type => "DEVICE";

    public SimDevice Device { get; }

    public SimHwpt? Hwpt { get; set; }

    // VFIO holds the device object for as long as it is bound.
    public override bool InUse => true;
}

/// <summary>IOMMUFD_OBJ_ACCESS: an emulated device (mdev) bound by VFIO_DEVICE_BIND_IOMMUFD (iommufd_access_create).</summary>
internal sealed class SimIommufdAccess : SimIommufdObject
{
    public SimIommufdAccess(SimDevice device) => Device = device;

    public override string Type => "ACCESS";

    public SimDevice Device { get; }

    public SimIoas? Ioas { get; set; }

    public override bool InUse => true;
}
