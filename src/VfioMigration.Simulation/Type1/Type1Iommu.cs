using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// The type1 IOMMU driver's state for one container: the kernel's <c>struct vfio_iommu</c> and the
/// operations of drivers/vfio/vfio_iommu_type1.c (Linux 6.12), with the same checks in the same order and
/// the same errnos. The host's IOMMU is the one of <see cref="SimHostConfiguration"/>: one kind of domain
/// (VT-d in the lab) shared by every IOMMU-backed group, with the configured page sizes and IOVA ranges
/// (the gaps between the ranges are the reserved regions, such as the MSI window).
/// </summary>
internal sealed class Type1Iommu
{
    /// <summary>Host page size and PAGE_MASK (x86_64, 4 KiB pages).</summary>
    public const ulong PAGE_SIZE = 4096;
    public const ulong PAGE_MASK = ~(PAGE_SIZE - 1);

    /// <summary>VFIO_PIN_PAGES_MAX_ENTRIES: PAGE_SIZE / sizeof(unsigned long).</summary>
    public const int VFIO_PIN_PAGES_MAX_ENTRIES = (int)(PAGE_SIZE / 8);

    private readonly SimHostConfiguration _config;
    private readonly List<Type1Mapping> _dmas = new();                  // dma_list, sorted by iova, disjoint
    private List<(ulong Start, ulong End)> _iovaList = new();           // iova_list, inclusive ends
    private readonly List<GroupEntry> _domainGroups = new();            // groups of the (single) IOMMU domain
    private readonly List<GroupEntry> _emulatedGroups = new();          // emulated_iommu_groups (mdev)

    private sealed class GroupEntry(SimGroup group)
    {
        public SimGroup Group { get; } = group;

        /// <summary>group->pinned_page_dirty_scope.</summary>
        public bool PinnedPageDirtyScope { get; set; }
    }

    private Type1Iommu(SimHostConfiguration config, bool v2, bool nesting)
    {
        _config = config;
        V2 = v2;
        Nesting = nesting;
        DmaAvail = config.DmaEntryLimit;
    }

    /// <summary>iommu->v2: TYPE1v2 (or NESTING) semantics: DIRTY_PAGES, pinning, unmaps that must not bisect.</summary>
    public bool V2 { get; }

    /// <summary>iommu->nesting (VFIO_TYPE1_NESTING_IOMMU).</summary>
    public bool Nesting { get; }

    /// <summary>iommu->dma_avail: how many more mappings dma_entry_limit allows.</summary>
    public uint DmaAvail { get; private set; }

    /// <summary>iommu->dirty_page_tracking.</summary>
    public bool DirtyPageTracking { get; private set; }

    /// <summary>iommu->pgsize_bitmap: PAGE_MASK until an IOMMU domain exists, then the domain's page sizes.</summary>
    public ulong PgsizeBitmap { get; private set; } = PAGE_MASK;

    /// <summary>iommu->num_non_pinned_groups: IOMMU-backed groups whose DMA the kernel cannot see.</summary>
    public int NumNonPinnedGroups { get; private set; }

    /// <summary>iommu->vaddr_invalid_count.</summary>
    public int VaddrInvalidCount { get; private set; }

    /// <summary>Called before any dirty bitmap is computed (START, GET_BITMAP, UNMAP with GET_DIRTY_BITMAP).</summary>
    public Action? BeforeDirtyRead { get; set; }

    /// <summary>vfio_notify_dma_unmap: a mapping with pinned pages is about to go; vendor drivers must unpin.</summary>
    public Action<ulong, ulong>? DmaUnmapNotify { get; set; }

    /// <summary>The mappings, in IOVA order.</summary>
    public IReadOnlyList<Type1Mapping> Mappings => _dmas;

    /// <summary>iommu->iova_list.</summary>
    public IReadOnlyList<(ulong Start, ulong End)> IovaList => _iovaList;

    /// <summary>True while an IOMMU-backed group is attached (the container has an IOMMU domain).</summary>
    public bool HasDomain => _domainGroups.Count > 0;

    /// <summary>True while an mdev (emulated IOMMU) group is attached.</summary>
    public bool HasEmulated => _emulatedGroups.Count > 0;

    private ulong SmallestPageSize => 1UL << BitOperations.TrailingZeroCount(PgsizeBitmap);

    private int PageShift => BitOperations.TrailingZeroCount(PgsizeBitmap);

    // ---------------------------------------------------------------------------------------------
    // Driver registration: open, CHECK_EXTENSION, attach/detach group

    /// <summary>vfio_iommu_type1_open: the driver data for a SET_IOMMU type, or -EINVAL.</summary>
    public static int Open(ulong type, SimHostConfiguration config, out Type1Iommu? iommu)
    {
        iommu = type switch
        {
            VfioConstants.VFIO_TYPE1_IOMMU => new Type1Iommu(config, v2: false, nesting: false),
            VfioConstants.VFIO_TYPE1_NESTING_IOMMU => new Type1Iommu(config, v2: true, nesting: true),
            VfioConstants.VFIO_TYPE1v2_IOMMU => new Type1Iommu(config, v2: true, nesting: false),
            _ => null,
        };
        return iommu is null ? -Errno.EINVAL : 0;
    }

    /// <summary>vfio_iommu_type1_check_extension; <paramref name="iommu"/> is null before SET_IOMMU.</summary>
    public static int CheckExtension(Type1Iommu? iommu, ulong extension) => extension switch
    {
        VfioConstants.VFIO_TYPE1_IOMMU or VfioConstants.VFIO_TYPE1v2_IOMMU or VfioConstants.VFIO_TYPE1_NESTING_IOMMU
            or VfioConstants.VFIO_UNMAP_ALL => 1,
        // "Disable this feature if mdevs are present. They cannot safely pin/unpin/rw while vaddrs are being updated."
        VfioConstants.VFIO_UPDATE_VADDR => iommu is not null && !iommu.HasEmulated ? 1 : 0,
        // vfio_domains_have_enforce_cache_coherency: 1 when every domain enforces it (vacuously with none).
        // The lab's emulated VT-d has no snoop control (ecap SC = 0), so its domains do not.
        VfioConstants.VFIO_DMA_CC_IOMMU => iommu is null ? 0 : iommu.HasDomain ? 0 : 1,
        _ => 0,
    };

    /// <summary>vfio_iommu_type1_attach_group: 0 or -errno.</summary>
    public int AttachGroup(SimGroup group)
    {
        if (Find(group) is not null) return -Errno.EINVAL;

        if (group.IsEmulatedIommu)
        {
            // "An emulated IOMMU group cannot dirty memory directly, it can only use interfaces that
            // provide dirty tracking." It joins in pinned-page scope and leaves iova_list alone.
            _emulatedGroups.Insert(0, new GroupEntry(group) { PinnedPageDirtyScope = true });
            return 0;
        }

        // iommu_enable_nesting: VT-d implements no enable_nesting op.
        if (Nesting) return -Errno.EINVAL;

        var (apertureStart, apertureEnd) = Aperture();
        if (AperConflict(apertureStart, apertureEnd)) return -Errno.EINVAL;
        if (ResvConflict()) return -Errno.EINVAL;

        var copy = new List<(ulong Start, ulong End)>(_iovaList);
        AperResize(copy, apertureStart, apertureEnd);
        int rc = ResvExclude(copy, ReservedRegions());
        if (rc < 0) return rc;

        if (_domainGroups.Count == 0)
        {
            // A new domain: vfio_iommu_replay pins and maps every existing mapping into it.
            foreach (var dma in _dmas)
            {
                if (dma.IommuMapped) continue;
                // intel_iommu_map: "iommu width ... is not sufficient for the mapped address" -> -EFAULT.
                if (dma.Iova < apertureStart || dma.Last > apertureEnd) return -Errno.EFAULT;
                if (!CanPin(dma.Vaddr, dma.Size, dma.Prot, fresh: true)) return -Errno.EFAULT;
            }
            foreach (var dma in _dmas) dma.IommuMapped = true;
            _domainGroups.Add(new GroupEntry(group));
            UpdatePgsizeBitmap();
        }
        else
        {
            _domainGroups.Add(new GroupEntry(group));
        }

        _iovaList = copy;
        // "An iommu backed group can dirty memory directly and therefore demotes the iommu scope until it
        // declares itself dirty tracking capable via the page pinning interface."
        NumNonPinnedGroups++;
        return 0;
    }

    /// <summary>vfio_iommu_type1_detach_group.</summary>
    public void DetachGroup(SimGroup group)
    {
        bool updateDirtyScope = false;
        int e = _emulatedGroups.FindIndex(g => g.Group == group);
        if (e >= 0)
        {
            updateDirtyScope = !_emulatedGroups[e].PinnedPageDirtyScope;
            _emulatedGroups.RemoveAt(e);
            if (_emulatedGroups.Count == 0 && _domainGroups.Count == 0) UnmapUnpinAll();
        }
        else
        {
            int d = _domainGroups.FindIndex(g => g.Group == group);
            if (d < 0) return;
            var copy = new List<(ulong Start, ulong End)>(_iovaList);
            updateDirtyScope = !_domainGroups[d].PinnedPageDirtyScope;
            _domainGroups.RemoveAt(d);
            if (_domainGroups.Count == 0)
            {
                // The domain goes. The last domain takes every mapping with it, unless mdev groups remain:
                // then the mappings stay, no longer IOMMU-mapped (vfio_iommu_unmap_unpin_reaccount).
                if (_emulatedGroups.Count == 0) UnmapUnpinAll();
                else foreach (var dma in _dmas) dma.IommuMapped = false;
                // vfio_iommu_aper_expand with no domain left: the aperture becomes [0, 2^64 - 1].
                if (copy.Count > 0)
                {
                    copy[0] = (0, copy[0].End);
                    copy[^1] = (copy[^1].Start, ulong.MaxValue);
                }
                UpdatePgsizeBitmap();
            }
            if (ResvRefresh(copy) == 0) _iovaList = copy;
        }

        // "Removal of a group without dirty tracking may allow the iommu scope to be promoted."
        if (updateDirtyScope)
        {
            NumNonPinnedGroups--;
            if (DirtyPageTracking)
            {
                // vfio_iommu_populate_bitmap_full: nothing the departed group wrote may be lost.
                foreach (var dma in _dmas) dma.Dirty!.All = true;
            }
        }
    }

    /// <summary>vfio_iommu_type1_release: the last group left the container.</summary>
    public void Release()
    {
        _emulatedGroups.Clear();
        UnmapUnpinAll();
        _domainGroups.Clear();
        _iovaList.Clear();
    }

    private GroupEntry? Find(SimGroup group) =>
        _domainGroups.FirstOrDefault(g => g.Group == group) ?? _emulatedGroups.FirstOrDefault(g => g.Group == group);

    private void UpdatePgsizeBitmap()
    {
        ulong bitmap = ulong.MaxValue;
        if (_domainGroups.Count > 0) bitmap &= _config.IommuPageSizes;
        // "In case the IOMMU supports page sizes smaller than PAGE_SIZE we pretend PAGE_SIZE is supported."
        if ((bitmap & ~PAGE_MASK) != 0)
        {
            bitmap &= PAGE_MASK;
            bitmap |= PAGE_SIZE;
        }
        PgsizeBitmap = bitmap;
    }

    // ---------------------------------------------------------------------------------------------
    // IOVA list (aperture and reserved regions of the host IOMMU)

    private List<(ulong Start, ulong End)> SortedRanges() => _config.IovaRanges.OrderBy(r => r.Start).ToList();

    /// <summary>The domain geometry: from the first usable IOVA to the last.</summary>
    private (ulong Start, ulong End) Aperture()
    {
        var ranges = SortedRanges();
        return ranges.Count == 0 ? (0, ulong.MaxValue) : (ranges[0].Start, ranges[^1].End);
    }

    /// <summary>The group's reserved regions: the holes between the usable ranges (the MSI window on x86).</summary>
    private List<(ulong Start, ulong End)> ReservedRegions()
    {
        var ranges = SortedRanges();
        var holes = new List<(ulong, ulong)>();
        for (int i = 1; i < ranges.Count; i++)
            if (ranges[i].Start > ranges[i - 1].End + 1) holes.Add((ranges[i - 1].End + 1, ranges[i].Start - 1));
        return holes;
    }

    /// <summary>vfio_iommu_aper_conflict.</summary>
    private bool AperConflict(ulong start, ulong end)
    {
        if (_iovaList.Count == 0) return false;
        var first = _iovaList[0];
        var last = _iovaList[^1];
        if (start > last.End || end < first.Start) return true;
        if (start > first.Start && FindDma(first.Start, start - first.Start) is not null) return true;
        if (end < last.End && FindDma(end + 1, last.End - end) is not null) return true;
        return false;
    }

    /// <summary>vfio_iommu_resv_conflict.</summary>
    private bool ResvConflict() => ReservedRegions().Any(r => FindDma(r.Start, r.End - r.Start + 1) is not null);

    /// <summary>vfio_iommu_aper_resize.</summary>
    private static void AperResize(List<(ulong Start, ulong End)> list, ulong start, ulong end)
    {
        if (list.Count == 0)
        {
            list.Add((start, end));
            return;
        }
        for (int i = 0; i < list.Count;)
        {
            var n = list[i];
            if (start < n.Start) break;
            if (start >= n.Start && start < n.End)
            {
                list[i] = (start, n.End);
                break;
            }
            list.RemoveAt(i);
        }
        for (int i = 0; i < list.Count;)
        {
            var n = list[i];
            if (end > n.End)
            {
                i++;
                continue;
            }
            if (end > n.Start && end <= n.End)
            {
                list[i] = (n.Start, end);
                i++;
                continue;
            }
            list.RemoveAt(i);
        }
    }

    /// <summary>vfio_iommu_resv_exclude: 0, or -EINVAL when nothing usable remains.</summary>
    private static int ResvExclude(List<(ulong Start, ulong End)> list, List<(ulong Start, ulong End)> reserved)
    {
        foreach (var (rs, re) in reserved)
        {
            for (int i = 0; i < list.Count;)
            {
                var n = list[i];
                if (rs > n.End || re < n.Start)
                {
                    i++;
                    continue;
                }
                var replacement = new List<(ulong, ulong)>(2);
                if (rs > n.Start) replacement.Add((n.Start, rs - 1));
                if (re < n.End) replacement.Add((re + 1, n.End));
                list.RemoveAt(i);
                list.InsertRange(i, replacement);
                i += replacement.Count;
            }
        }
        return list.Count == 0 ? -Errno.EINVAL : 0;
    }

    /// <summary>vfio_iommu_resv_refresh: rebuilds the list from its outer bounds and the remaining groups' reserved regions.</summary>
    private int ResvRefresh(List<(ulong Start, ulong End)> list)
    {
        if (list.Count == 0) return -Errno.EINVAL;
        var reserved = _domainGroups.Count > 0 ? ReservedRegions() : new List<(ulong, ulong)>();
        ulong start = list[0].Start, end = list[^1].End;
        list.Clear();
        AperResize(list, start, end);
        return ResvExclude(list, reserved);
    }

    /// <summary>vfio_iommu_iova_dma_valid: inside one usable range, or anything when the list is empty (mdev only).</summary>
    private bool IovaDmaValid(ulong start, ulong end) =>
        _iovaList.Count == 0 || _iovaList.Any(n => start >= n.Start && end <= n.End);

    // ---------------------------------------------------------------------------------------------
    // The mapping tree

    /// <summary>
    /// vfio_find_dma: a mapping the range [start, start + size) overlaps, with the kernel's own comparisons
    /// (size 1 finds the mapping holding an address; size 0 finds one holding it strictly after its start).
    /// </summary>
    private Type1Mapping? FindDma(ulong start, ulong size)
    {
        int lo = 0, hi = _dmas.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var dma = _dmas[mid];
            if (start + size <= dma.Iova) hi = mid - 1;
            else if (start >= dma.Iova + dma.Size) lo = mid + 1;
            else return dma;
        }
        return null;
    }

    /// <summary>vfio_find_dma_first_node: index of the first mapping ending above <paramref name="start"/>, or -1.</summary>
    private int FindDmaFirstNode(ulong start, ulong size)
    {
        int lo = 0, hi = _dmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (start < _dmas[mid].Iova + _dmas[mid].Size) hi = mid;
            else lo = mid + 1;
        }
        if (lo == _dmas.Count) return -1;
        if (size != 0 && _dmas[lo].Iova >= start + size) return -1;
        return lo;
    }

    private void Link(Type1Mapping dma)
    {
        int lo = 0, hi = _dmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_dmas[mid].Iova < dma.Iova) lo = mid + 1;
            else hi = mid;
        }
        _dmas.Insert(lo, dma);
    }

    /// <summary>vfio_remove_dma for <paramref name="count"/> mappings from index <paramref name="first"/>.</summary>
    private void RemoveDmas(int first, int count)
    {
        for (int i = first; i < first + count; i++)
        {
            var dma = _dmas[i];
            if (dma.VaddrInvalid) VaddrInvalidCount--;
            dma.Pins.Clear();
            dma.Dirty = null;
            DmaAvail++;
        }
        _dmas.RemoveRange(first, count);
    }

    private void RemoveDma(Type1Mapping dma) => RemoveDmas(_dmas.IndexOf(dma), 1);

    private void UnmapUnpinAll() => RemoveDmas(0, _dmas.Count);

    /// <summary>
    /// Whether the user memory behind a mapping can be pinned (else EFAULT). A user's MAP_DMA (and a replay)
    /// is checked against the address space as it is now; device models' pins and writes may use a recent view.
    /// </summary>
    private static bool CanPin(ulong vaddr, ulong size, int prot, bool fresh) =>
        UserAddressSpace.IsAccessible(vaddr, size, write: (prot & Type1Mapping.IOMMU_WRITE) != 0, fresh);

    // ---------------------------------------------------------------------------------------------
    // VFIO_IOMMU_GET_INFO

    /// <summary>vfio_iommu_type1_get_info (6.12: capabilities padded to 8 bytes, minsz = min(argsz, sizeof(info))).</summary>
    public int GetInfo(Span<byte> arg)
    {
        const int minsz = 16;                                    // offsetofend(iova_pgsizes)
        int infoSize = StructBytes.SizeOf<vfio_iommu_type1_info>();
        if (arg.Length < minsz) return -Errno.EFAULT;
        uint argsz = BitConverter.ToUInt32(arg);
        if (argsz < minsz) return -Errno.EINVAL;
        int copySize = (int)Math.Min(argsz, (uint)infoSize);

        var info = new vfio_iommu_type1_info
        {
            argsz = argsz,
            flags = VfioConstants.VFIO_IOMMU_INFO_PGSIZES,
            iova_pgsizes = PgsizeBitmap,
        };
        byte[] caps = BuildCaps();
        if (caps.Length > 0)
        {
            info.flags |= VfioConstants.VFIO_IOMMU_INFO_CAPS;
            if (argsz < infoSize + caps.Length)
            {
                info.argsz = (uint)(infoSize + caps.Length);
            }
            else
            {
                // vfio_info_cap_shift: next offsets become offsets from the start of the user's buffer.
                ShiftChain(caps, infoSize);
                if (arg.Length < infoSize + caps.Length) return -Errno.EFAULT;
                caps.CopyTo(arg.Slice(infoSize));
                info.cap_offset = (uint)infoSize;
            }
        }
        if (arg.Length < copySize) return -Errno.EFAULT;
        Span<byte> bytes = stackalloc byte[infoSize];
        StructBytes.Write(bytes, info);
        bytes.Slice(0, copySize).CopyTo(arg);
        return 0;
    }

    /// <summary>The capability chain in the kernel's order: MIGRATION, DMA_AVAIL, then IOVA_RANGE if the list is not empty.</summary>
    private byte[] BuildCaps()
    {
        var chain = new CapChain();
        chain.Add(new vfio_iommu_type1_info_cap_migration
        {
            header = new vfio_info_cap_header { id = VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version = 1 },
            flags = 0,
            pgsize_bitmap = SmallestPageSize,                       // "support minimum pgsize"
            max_dirty_bitmap_size = VfioConstants.DIRTY_BITMAP_SIZE_MAX,
        });
        chain.Add(new vfio_iommu_type1_info_dma_avail
        {
            header = new vfio_info_cap_header { id = VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version = 1 },
            avail = DmaAvail,
        });
        if (_iovaList.Count > 0)
        {
            // "Return 0 as a container with a single mdev device will have an empty list."
            int header = StructBytes.SizeOf<vfio_iommu_type1_info_cap_iova_range>();
            int rangeSize = StructBytes.SizeOf<vfio_iova_range>();
            var cap = new byte[header + rangeSize * _iovaList.Count];
            StructBytes.Write(cap, new vfio_iommu_type1_info_cap_iova_range
            {
                header = new vfio_info_cap_header { id = VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version = 1 },
                nr_iovas = (uint)_iovaList.Count,
            });
            for (int i = 0; i < _iovaList.Count; i++)
                StructBytes.Write(cap, new vfio_iova_range { start = _iovaList[i].Start, end = _iovaList[i].End }, header + i * rangeSize);
            chain.Add(cap);
        }
        return chain.ToArray();
    }

    private static void ShiftChain(byte[] caps, int offset)
    {
        int at = 0;
        while (true)
        {
            uint next = BitConverter.ToUInt32(caps, at + 4);
            if (next == 0) return;
            BitConverter.TryWriteBytes(caps.AsSpan(at + 4), next + (uint)offset);
            at = (int)next;
        }
    }

    /// <summary>vfio_info_cap_add: appends capabilities, each padded to 8 bytes (6.6+), linking each to the next.</summary>
    private sealed class CapChain
    {
        private readonly List<byte> _buffer = new();
        private int _last = -1;

        public void Add<T>(T cap) where T : unmanaged => Add(StructBytes.Buffer(cap));

        public void Add(byte[] cap)
        {
            int offset = _buffer.Count;
            if (_last >= 0)
            {
                var next = BitConverter.GetBytes((uint)offset);
                for (int i = 0; i < 4; i++) _buffer[_last + 4 + i] = next[i];
            }
            _buffer.AddRange(cap);
            int padded = (cap.Length + 7) & ~7;
            for (int i = cap.Length; i < padded; i++) _buffer.Add(0);
            _last = offset;
        }

        public byte[] ToArray() => _buffer.ToArray();
    }

    // ---------------------------------------------------------------------------------------------
    // VFIO_IOMMU_MAP_DMA

    /// <summary>vfio_iommu_type1_map_dma and vfio_dma_do_map.</summary>
    public int MapDma(Span<byte> arg)
    {
        const int minsz = 32;                                   // offsetofend(size)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var map = StructBytes.Read<vfio_iommu_type1_dma_map>(arg);
        const uint mask = VfioConstants.VFIO_DMA_MAP_FLAG_READ | VfioConstants.VFIO_DMA_MAP_FLAG_WRITE | VfioConstants.VFIO_DMA_MAP_FLAG_VADDR;
        if (map.argsz < minsz || (map.flags & ~mask) != 0) return -Errno.EINVAL;

        bool setVaddr = (map.flags & VfioConstants.VFIO_DMA_MAP_FLAG_VADDR) != 0;
        int prot = 0;
        if ((map.flags & VfioConstants.VFIO_DMA_MAP_FLAG_WRITE) != 0) prot |= Type1Mapping.IOMMU_WRITE;
        if ((map.flags & VfioConstants.VFIO_DMA_MAP_FLAG_READ) != 0) prot |= Type1Mapping.IOMMU_READ;
        if ((prot != 0 && setVaddr) || (prot == 0 && !setVaddr)) return -Errno.EINVAL;

        ulong iova = map.iova, size = map.size, vaddr = map.vaddr;
        ulong pgsize = SmallestPageSize;
        if (size == 0 || ((size | iova | vaddr) & (pgsize - 1)) != 0) return -Errno.EINVAL;
        // "Don't allow IOVA or virtual address wrap"
        if (iova + size - 1 < iova || vaddr + size - 1 < vaddr) return -Errno.EINVAL;

        var dma = FindDma(iova, size);
        if (setVaddr)
        {
            if (dma is null) return -Errno.ENOENT;
            if (!dma.VaddrInvalid || dma.Iova != iova || dma.Size != size) return -Errno.EINVAL;
            dma.Vaddr = vaddr;
            dma.VaddrInvalid = false;
            VaddrInvalidCount--;
            return 0;
        }
        if (dma is not null) return -Errno.EEXIST;
        if (DmaAvail == 0) return -Errno.ENOSPC;
        if (!IovaDmaValid(iova, iova + size - 1)) return -Errno.EINVAL;

        // Without an IOMMU domain nothing is pinned now (mdev drivers pin on demand); with one,
        // vfio_pin_map_dma pins every page, which faults on memory the process has not mapped.
        if (HasDomain && !CanPin(vaddr, size, prot, fresh: true)) return -Errno.EFAULT;

        dma = new Type1Mapping(iova, size, vaddr, prot) { IommuMapped = HasDomain };
        DmaAvail--;
        Link(dma);

        // "Mappings created while tracking is on get a bitmap at map time" (vfio_dma_bitmap_alloc).
        if (DirtyPageTracking)
        {
            if ((size >> PageShift) > VfioConstants.DIRTY_BITMAP_PAGES_MAX)
            {
                RemoveDma(dma);
                return -Errno.EINVAL;
            }
            dma.Dirty = new DirtyLog();
        }
        return 0;
    }

    // ---------------------------------------------------------------------------------------------
    // VFIO_IOMMU_UNMAP_DMA

    /// <summary>vfio_iommu_type1_unmap_dma and vfio_dma_do_unmap.</summary>
    public int UnmapDma(Span<byte> arg)
    {
        const int minsz = 24;                                   // offsetofend(size)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var unmap = StructBytes.Read<vfio_iommu_type1_dma_unmap>(arg);
        const uint mask = VfioConstants.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR
                          | VfioConstants.VFIO_DMA_UNMAP_FLAG_ALL;
        if (unmap.argsz < minsz || (unmap.flags & ~mask) != 0) return -Errno.EINVAL;

        bool getBitmap = (unmap.flags & VfioConstants.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) != 0;
        bool unmapAll = (unmap.flags & VfioConstants.VFIO_DMA_UNMAP_FLAG_ALL) != 0;
        bool invalidateVaddr = (unmap.flags & VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR) != 0;
        if (getBitmap && (unmapAll || invalidateVaddr)) return -Errno.EINVAL;

        var bitmap = default(vfio_bitmap);
        if (getBitmap)
        {
            if (unmap.argsz < minsz + StructBytes.SizeOf<vfio_bitmap>()) return -Errno.EINVAL;
            if (arg.Length < minsz + StructBytes.SizeOf<vfio_bitmap>()) return -Errno.EFAULT;
            bitmap = StructBytes.Read<vfio_bitmap>(arg, minsz);
            if (!UserMemory.AccessOk(bitmap.data, bitmap.size)) return -Errno.EINVAL;
            int shift = BitOperations.TrailingZeroCount(bitmap.pgsize);
            if (VerifyBitmapSize(unmap.size >> shift, bitmap.size) < 0) return -Errno.EINVAL;
        }

        int ret = DoUnmap(ref unmap, bitmap, getBitmap, unmapAll, invalidateVaddr);
        if (ret < 0) return ret;
        StructBytes.Write(arg, unmap);
        return 0;
    }

    private int DoUnmap(ref vfio_iommu_type1_dma_unmap unmap, vfio_bitmap bitmap, bool getBitmap, bool unmapAll, bool invalidateVaddr)
    {
        ulong unmapped = 0;
        ulong iova = unmap.iova;
        ulong size = unmap.size;
        int ret = -Errno.EINVAL;
        try
        {
            // "Cannot update vaddr if mdev is present."
            if (invalidateVaddr && HasEmulated) return ret = -Errno.EBUSY;

            int pgshift = PageShift;
            ulong pgsize = 1UL << pgshift;
            if ((iova & (pgsize - 1)) != 0) return ret;
            if (unmapAll)
            {
                if (iova != 0 || size != 0) return ret;
                size = ulong.MaxValue;
            }
            else if (size == 0 || (size & (pgsize - 1)) != 0 || iova + size - 1 < iova)
            {
                return ret;
            }

            // "When dirty tracking is enabled, allow only min supported pgsize"
            if (getBitmap && (!DirtyPageTracking || bitmap.pgsize != pgsize)) return ret;

            // v2: "Unmap requests must fully cover previous mappings ... there must not be any previous
            // mappings bisected by the range."
            if (V2 && !unmapAll)
            {
                var dma = FindDma(iova, 1);
                if (dma is not null && dma.Iova != iova) return ret;
                dma = FindDma(iova + size - 1, 0);
                if (dma is not null && dma.Iova + dma.Size != iova + size) return ret;
            }

            ret = 0;
            if (getBitmap) BeforeDirtyRead?.Invoke();

            if (invalidateVaddr)
            {
                var marked = new List<Type1Mapping>();
                for (int i = FindDmaFirstNode(iova, size); i >= 0 && i < _dmas.Count; i++)
                {
                    var dma = _dmas[i];
                    if (dma.Iova >= iova + size) break;
                    if (!V2 && iova > dma.Iova) break;
                    if (dma.VaddrInvalid)
                    {
                        foreach (var m in marked)
                        {
                            m.VaddrInvalid = false;
                            VaddrInvalidCount--;
                        }
                        unmapped = 0;
                        return ret = -Errno.EINVAL;
                    }
                    dma.VaddrInvalid = true;
                    VaddrInvalidCount++;
                    marked.Add(dma);
                    unmapped += dma.Size;
                }
                return ret;
            }

            int first = FindDmaFirstNode(iova, size), count = 0;
            for (int i = first; i >= 0 && i < _dmas.Count; i++)
            {
                var dma = _dmas[i];
                if (dma.Iova >= iova + size) break;
                if (!V2 && iova > dma.Iova) break;

                if (dma.Pins.Count > 0)
                {
                    // vfio_notify_dma_unmap: "Drivers MUST unpin pages in response to an invalidation."
                    DmaUnmapNotify?.Invoke(dma.Iova, dma.Size);
                    dma.Pins.Clear();
                }

                if (getBitmap)
                {
                    ret = UserDirtyBitmap.Update(bitmap.data, dma, iova, pgshift, ReadsAllDirty(dma));
                    if (ret < 0) break;
                }

                unmapped += dma.Size;
                count++;
            }
            // The mappings before a faulting bitmap copy are gone; the one that faulted stays.
            if (count > 0) RemoveDmas(first, count);
            return ret;
        }
        finally
        {
            // "Report how much was unmapped"
            unmap.size = unmapped;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // VFIO_IOMMU_DIRTY_PAGES

    /// <summary>vfio_iommu_type1_dirty_pages, with the checks of kernel-interface.md c.2 in their order.</summary>
    public int DirtyPages(Span<byte> arg)
    {
        if (!V2) return -Errno.EACCES;
        const int minsz = 8;                                    // offsetofend(flags)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var dirty = StructBytes.Read<vfio_iommu_type1_dirty_bitmap>(arg);
        const uint mask = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
                          | VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
        if (dirty.argsz < minsz || (dirty.flags & ~mask) != 0) return -Errno.EINVAL;
        // "only one flag should be set at a time"
        if (BitOperations.PopCount(dirty.flags) != 1) return -Errno.EINVAL;

        if ((dirty.flags & VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_START) != 0) return Start();
        if ((dirty.flags & VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) != 0)
        {
            Stop();
            return 0;
        }

        ulong dataSize = dirty.argsz - (ulong)minsz;
        int rangeSize = StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap_get>();
        if (dataSize == 0 || dataSize < (ulong)rangeSize) return -Errno.EINVAL;
        if (arg.Length < minsz + rangeSize) return -Errno.EFAULT;
        var range = StructBytes.Read<vfio_iommu_type1_dirty_bitmap_get>(arg, minsz);

        if (range.iova + range.size < range.iova) return -Errno.EINVAL;
        if (!UserMemory.AccessOk(range.bitmap.data, range.bitmap.size)) return -Errno.EINVAL;
        int pgshift = BitOperations.TrailingZeroCount(range.bitmap.pgsize);
        if (VerifyBitmapSize(range.size >> pgshift, range.bitmap.size) < 0) return -Errno.EINVAL;

        ulong iommuPgsize = SmallestPageSize;
        // "allow only smallest supported pgsize"
        if (range.bitmap.pgsize != iommuPgsize) return -Errno.EINVAL;
        if ((range.iova & (iommuPgsize - 1)) != 0) return -Errno.EINVAL;
        if (range.size == 0 || (range.size & (iommuPgsize - 1)) != 0) return -Errno.EINVAL;
        if (!DirtyPageTracking) return -Errno.EINVAL;
        return IovaDirtyBitmap(range.bitmap.data, range.iova, range.size, pgshift);
    }

    /// <summary>START: a bitmap per mapping, pre-marked with the pinned pages; idempotent.</summary>
    private int Start()
    {
        if (DirtyPageTracking) return 0;
        int pgshift = PageShift;
        // vfio_dma_bitmap_alloc: DIRTY_BITMAP_PAGES_MAX is what bitmap_set() can address.
        if (_dmas.Any(d => (d.Size >> pgshift) > VfioConstants.DIRTY_BITMAP_PAGES_MAX)) return -Errno.EINVAL;
        BeforeDirtyRead?.Invoke();
        foreach (var dma in _dmas)
        {
            dma.Dirty = new DirtyLog();
            dma.Dirty.ResetToPinned(dma);
        }
        DirtyPageTracking = true;
        return 0;
    }

    /// <summary>STOP: frees every bitmap; always succeeds.</summary>
    private void Stop()
    {
        if (!DirtyPageTracking) return;
        DirtyPageTracking = false;
        foreach (var dma in _dmas) dma.Dirty = null;
    }

    /// <summary>verify_bitmap_size.</summary>
    private static int VerifyBitmapSize(ulong npages, ulong bitmapSize)
    {
        if (npages == 0 || bitmapSize == 0 || bitmapSize > VfioConstants.DIRTY_BITMAP_SIZE_MAX
            || bitmapSize < VfioConstants.DIRTY_BITMAP_BYTES(npages))
            return -Errno.EINVAL;
        return 0;
    }

    /// <summary>
    /// What a read finds in a mapping's bitmap (update_user_bitmap): every page while an IOMMU-backed group that
    /// does not pin is attached and the mapping is IOMMU-mapped, else what the log holds.
    /// </summary>
    private bool ReadsAllDirty(Type1Mapping dma) => (NumNonPinnedGroups > 0 && dma.IommuMapped) || dma.Dirty!.All;

    /// <summary>vfio_iova_dirty_bitmap.</summary>
    private int IovaDirtyBitmap(ulong userBitmap, ulong iova, ulong size, int pgshift)
    {
        // "GET_BITMAP request must fully cover vfio_dma mappings. Multiple vfio_dma mappings may be clubbed
        // by specifying large ranges, but there must not be any previous mappings bisected by the range."
        var dma = FindDma(iova, 1);
        if (dma is not null && dma.Iova != iova) return -Errno.EINVAL;
        dma = FindDma(iova + size - 1, 0);
        if (dma is not null && dma.Iova + dma.Size != iova + size) return -Errno.EINVAL;

        BeforeDirtyRead?.Invoke();

        ulong last = iova + size - 1;
        foreach (var d in _dmas)
        {
            if (d.Iova < iova) continue;
            if (d.Iova > last) break;
            int rc = UserDirtyBitmap.Update(userBitmap, d, iova, pgshift, ReadsAllDirty(d));
            if (rc < 0) return rc;
            // "Re-populate bitmap to include all pinned pages which are considered as dirty but exclude
            // pages which are unpinned and pages which are marked dirty by vfio_dma_rw()"
            d.Dirty!.ResetToPinned(d);
        }
        return 0;
    }

    // ---------------------------------------------------------------------------------------------
    // In-kernel interfaces of vendor drivers: vfio_pin_pages, vfio_unpin_pages, vfio_dma_rw

    /// <summary>vfio_pin_pages (container.c) and vfio_iommu_type1_pin_pages: 0, or -errno with nothing left pinned.</summary>
    public int PinPages(ulong iova, int pages)
    {
        if (pages <= 0) return -Errno.EINVAL;
        if (pages > VFIO_PIN_PAGES_MAX_ENTRIES) return -Errno.E2BIG;
        if (!V2) return -Errno.EACCES;
        if (VaddrInvalidCount > 0) return -Errno.EBUSY;         // "vfio_pin_pages not allowed with VFIO_UPDATE_VADDR"
        if ((iova & (PAGE_SIZE - 1)) != 0) return -Errno.EINVAL;

        const int prot = Type1Mapping.IOMMU_READ | Type1Mapping.IOMMU_WRITE;
        int pgshift = PageShift;
        int i;
        int ret = 0;
        for (i = 0; i < pages; i++)
        {
            ulong at = iova + PAGE_SIZE * (ulong)i;
            var dma = FindDma(at, PAGE_SIZE);
            if (dma is null)
            {
                ret = -Errno.EINVAL;
                break;
            }
            if ((dma.Prot & prot) != prot)
            {
                ret = -Errno.EPERM;
                break;
            }
            ulong page = (at - dma.Iova) >> pgshift;
            if (dma.Pins.TryGetValue(page, out int refs))
            {
                dma.Pins[page] = refs + 1;
                continue;
            }
            if (!CanPin(dma.Vaddr + (at - dma.Iova), PAGE_SIZE, prot, fresh: false))
            {
                ret = -Errno.EFAULT;
                break;
            }
            dma.Pins[page] = 1;
            // "Bitmap populated with the smallest supported page size"
            if (DirtyPageTracking) dma.Dirty!.Pages.Add(page, 1);
        }
        if (ret == 0) return 0;
        for (int j = 0; j < i; j++) Unpin(iova + PAGE_SIZE * (ulong)j);
        return ret;
    }

    /// <summary>vfio_unpin_pages: drops one reference per page; stops at the first page outside every mapping.</summary>
    public void UnpinPages(ulong iova, int pages)
    {
        if (!V2 || pages <= 0 || pages > VFIO_PIN_PAGES_MAX_ENTRIES) return;
        for (int i = 0; i < pages; i++)
            if (!Unpin(iova + PAGE_SIZE * (ulong)i)) break;
    }

    private bool Unpin(ulong at)
    {
        var dma = FindDma(at, PAGE_SIZE);
        if (dma is null) return false;
        ulong page = (at - dma.Iova) >> PageShift;
        if (dma.Pins.TryGetValue(page, out int refs))
        {
            if (refs > 1) dma.Pins[page] = refs - 1;
            else dma.Pins.Remove(page);
        }
        return true;
    }

    /// <summary>vfio_dma_rw writing <paramref name="length"/> bytes at <paramref name="iova"/>: 0 or -errno.</summary>
    public int DmaWrite(ulong iova, ulong length)
    {
        if (length == 0) return -Errno.EINVAL;
        if (VaddrInvalidCount > 0) return -Errno.EBUSY;         // "vfio_dma_rw not allowed with VFIO_UPDATE_VADDR"
        int pgshift = PageShift;
        while (length > 0)
        {
            var dma = FindDma(iova, 1);
            if (dma is null) return -Errno.EINVAL;
            if ((dma.Prot & Type1Mapping.IOMMU_WRITE) == 0 || (dma.Prot & Type1Mapping.IOMMU_READ) == 0) return -Errno.EPERM;
            ulong offset = iova - dma.Iova;
            ulong count = Math.Min(length, dma.Size - offset);
            // copy_to_user into the mapping's user memory
            if (!CanPin(dma.Vaddr + offset, count, Type1Mapping.IOMMU_WRITE, fresh: false)) return -Errno.EFAULT;
            if (DirtyPageTracking)
                dma.Dirty!.Pages.Add(offset >> pgshift, ((offset + count - 1) >> pgshift) - (offset >> pgshift) + 1);
            length -= count;
            iova += count;
        }
        return 0;
    }
}
