using System.Collections.Generic;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// One user DMA mapping of a type1 container: the kernel's <c>struct vfio_dma</c>
/// (drivers/vfio/vfio_iommu_type1.c) with its pinned-page list and its dirty state.
/// </summary>
internal sealed class Type1Mapping
{
    /// <summary>IOMMU_READ / IOMMU_WRITE of include/linux/iommu.h (the device's view: it reads / writes memory).</summary>
    public const int IOMMU_READ = 1;
    public const int IOMMU_WRITE = 2;

    public Type1Mapping(ulong iova, ulong size, ulong vaddr, int prot)
    {
        Iova = iova;
        Size = size;
        Vaddr = vaddr;
        Prot = prot;
    }

    public ulong Iova { get; }

    public ulong Size { get; }

    /// <summary>The user address the mapping was made from (changed only by VFIO_DMA_MAP_FLAG_VADDR).</summary>
    public ulong Vaddr { get; set; }

    public int Prot { get; }

    /// <summary>Last IOVA of the mapping (inclusive; a mapping may end at 2^64 - 1, so no exclusive end is kept).</summary>
    public ulong Last => Iova + Size - 1;

    /// <summary>
    /// dma->iommu_mapped: the pages are pinned and mapped into an IOMMU domain. Only then does an IOMMU-backed
    /// group's DMA reach them unseen, which makes them read dirty on every GET_BITMAP.
    /// </summary>
    public bool IommuMapped { get; set; }

    /// <summary>dma->vaddr_invalid: VFIO_DMA_UNMAP_FLAG_VADDR invalidated the user address (live update).</summary>
    public bool VaddrInvalid { get; set; }

    /// <summary>dma->pfn_list: pages pinned by vendor drivers (vfio_pin_pages), page index within the mapping → references.</summary>
    public SortedDictionary<ulong, int> Pins { get; } = new();

    /// <summary>dma->bitmap: present only while dirty tracking runs (allocated by START or at map time).</summary>
    public DirtyLog? Dirty { get; set; }
}

/// <summary>
/// The dirty state of one mapping while tracking runs: the kernel's per-mapping bitmap, kept sparse. Either
/// every page (after a promotion re-fill) or the pages in <see cref="Pages"/> (pinned pages, vfio_dma_rw writes).
/// The "IOMMU-backed group present" rule is not stored here: it is applied when the bitmap is read.
/// </summary>
internal sealed class DirtyLog
{
    /// <summary>bitmap_set(dma->bitmap, 0, npages) happened (vfio_iommu_populate_bitmap_full).</summary>
    public bool All { get; set; }

    public PageRangeSet Pages { get; } = new();

    /// <summary>
    /// What the kernel leaves after START and after every read of the bitmap: cleared, then re-populated
    /// with the pinned pages (vfio_dma_populate_bitmap).
    /// </summary>
    public void ResetToPinned(Type1Mapping mapping)
    {
        All = false;
        Pages.Clear();
        ulong runStart = 0, runEnd = 0;
        foreach (ulong page in mapping.Pins.Keys)
        {
            if (runEnd != runStart && page == runEnd)
            {
                runEnd++;
                continue;
            }
            if (runEnd != runStart) Pages.Add(runStart, runEnd - runStart);
            runStart = page;
            runEnd = page + 1;
        }
        if (runEnd != runStart) Pages.Add(runStart, runEnd - runStart);
    }
}
