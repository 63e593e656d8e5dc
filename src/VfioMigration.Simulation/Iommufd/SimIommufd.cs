using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.IommufdConstants;

namespace VfioMigration.Core.Simulation.Iommufd;

/// <summary>
/// An open /dev/iommu: an iommufd context (drivers/iommu/iommufd/main.c) with its object table, answering
/// the ioctls of linux/iommufd.h in the order the kernel checks them: the generic size handling of
/// iommufd_fops_ioctl (EINVAL below the minimum, E2BIG for non-zero bytes past the known struct), then
/// each command's own checks (ioas.c, hw_pagetable.c, device.c, io_pagetable.c), and the Intel and AMD
/// drivers' refusals for the domains they cannot give (<see cref="SimIommuHardware"/>).
/// Not modelled: IOAS_ALLOW_IOVAS, IOAS_COPY, OPTION, VFIO_IOAS and the VFIO compatibility ioctls (ENOTTY here).
/// </summary>
internal sealed class SimIommufd : SimFile
{
    private readonly Dictionary<uint, SimIommufdObject> _objects = new();

    public SimIommufd(SimulatedKernel kernel) : base(kernel) { }

    /// <summary>The IOMMU behind a device: its group's unit, or the host's.</summary>
    private SimIommuHardware HardwareOf(SimDevice device) => SimIommuHardware.From(Kernel.Configuration, device.Group.Config);

    public override SimFileKind Kind => SimFileKind.Iommufd;

    public override string Name => IommuPath;

    /// <summary>The objects, for tests.</summary>
    internal IReadOnlyDictionary<uint, SimIommufdObject> Objects => _objects;

    private sealed record Op(int Size, int MinSize, Func<SimIommufd, byte[], (int Rc, bool Respond)> Execute);

    // iommufd_ioctl_ops: sizeof(struct) and offsetofend(struct, last mandatory member).
    private static readonly Dictionary<uint, Op> s_ops = new()
    {
        [IommufdIoctl.IOMMU_DESTROY.Number] = new(8, 8, (f, b) => (f.Destroy(b), false)),
        [IommufdIoctl.IOMMU_IOAS_ALLOC.Number] = new(12, 12, (f, b) => Responding(f.IoasAlloc(b))),
        [IommufdIoctl.IOMMU_IOAS_IOVA_RANGES.Number] = new(32, 32, (f, b) => f.IovaRanges(b)),
        [IommufdIoctl.IOMMU_IOAS_MAP.Number] = new(40, 40, (f, b) => Responding(f.IoasMap(b))),
        [IommufdIoctl.IOMMU_IOAS_UNMAP.Number] = new(24, 24, (f, b) => Responding(f.IoasUnmap(b))),
        [IommufdIoctl.IOMMU_HWPT_ALLOC.Number] = new(48, 24, (f, b) => Responding(f.HwptAlloc(b))),
        [IommufdIoctl.IOMMU_GET_HW_INFO.Number] = new(40, 32, (f, b) => Responding(f.GetHwInfo(b))),
        [IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING.Number] = new(16, 16, (f, b) => (f.SetDirtyTracking(b), false)),
        [IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP.Number] = new(48, 48, (f, b) => (f.GetDirtyBitmap(b), false)),
    };

    private static (int, bool) Responding(int rc) => (rc, rc == 0);

    public override int Ioctl(uint request, Span<byte> arg)
    {
        if (!s_ops.TryGetValue(request, out var op)) return -Errno.ENOTTY;
        if (arg.Length < 4) return -Errno.EFAULT;                        // get_user(ucmd.user_size)
        uint userSize = BinaryPrimitives.ReadUInt32LittleEndian(arg);
        if (userSize < op.MinSize) return -Errno.EINVAL;
        // copy_struct_from_user: the caller's struct is user_size bytes; what the kernel does not know must be zero.
        if (arg.Length < userSize) return -Errno.EFAULT;
        if (userSize > op.Size && arg.Slice(op.Size, (int)userSize - op.Size).IndexOfAnyExcept((byte)0) >= 0) return -Errno.E2BIG;
        var cmd = new byte[op.Size];
        arg.Slice(0, (int)Math.Min(userSize, (uint)op.Size)).CopyTo(cmd);
        var (rc, respond) = op.Execute(this, cmd);
        // iommufd_ucmd_respond copies min(user_size, sizeof) back.
        if (respond) cmd.AsSpan(0, (int)Math.Min(userSize, (uint)op.Size)).CopyTo(arg);
        return rc;
    }

    public override int Ioctl(uint request, ulong value) =>
        s_ops.ContainsKey(request) ? -Errno.EFAULT : -Errno.ENOTTY;

    // ---- the object table -------------------------------------------------------------------------

    /// <summary>xa_alloc with XA_FLAGS_ALLOC1: the lowest free id from 1.</summary>
    internal uint Add(SimIommufdObject obj)
    {
        uint id = 1;
        while (_objects.ContainsKey(id)) id++;
        obj.Id = id;
        _objects[id] = obj;
        return id;
    }

    private T? Get<T>(uint id) where T : SimIommufdObject =>
        _objects.TryGetValue(id, out var o) ? o as T : null;

    private int Destroy(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_destroy>(b);
        if (!_objects.TryGetValue(cmd.id, out var obj)) return -Errno.ENOENT;
        if (obj.InUse) return -Errno.EBUSY;
        _objects.Remove(cmd.id);
        if (obj is SimHwpt h) h.Ioas.Hwpts.Remove(h);
        return 0;
    }

    // ---- IOAS (ioas.c, io_pagetable.c) ------------------------------------------------------------

    private int IoasAlloc(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_ioas_alloc>(b);
        if (cmd.flags != 0) return -Errno.EOPNOTSUPP;
        cmd.out_ioas_id = Add(new SimIoas());
        StructBytes.Write(b, cmd);
        return 0;
    }

    private (int, bool) IovaRanges(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_ioas_iova_ranges>(b);
        if (cmd.__reserved != 0) return (-Errno.EOPNOTSUPP, false);
        var ioas = Get<SimIoas>(cmd.ioas_id);
        if (ioas is null) return (-Errno.ENOENT, false);
        uint max = cmd.num_iovas;
        uint n = 0;
        Span<byte> range = stackalloc byte[16];
        foreach (var (start, last) in ioas.Allowed(Kernel.Configuration))
        {
            if (n < max)
            {
                StructBytes.Write(range, new iommu_iova_range { start = start, last = last });
                if (!UserMemory.CopyToUser(cmd.allowed_iovas + n * 16UL, range)) return (-Errno.EFAULT, false);
            }
            n++;
        }
        cmd.num_iovas = n;
        cmd.out_iova_alignment = ioas.IovaAlignment;
        StructBytes.Write(b, cmd);
        return (n > max ? -Errno.EMSGSIZE : 0, true);
    }

    private int IoasMap(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_ioas_map>(b);
        const uint known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
        if ((cmd.flags & ~known) != 0 || cmd.__reserved != 0) return -Errno.EOPNOTSUPP;
        if (cmd.iova >= ulong.MaxValue || cmd.length >= ulong.MaxValue) return -Errno.EOVERFLOW;
        if ((cmd.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) == 0) return -Errno.EINVAL;
        var ioas = Get<SimIoas>(cmd.ioas_id);
        if (ioas is null) return -Errno.ENOENT;
        // iopt_alloc_pages: no pages for nothing.
        if (cmd.length == 0) return -Errno.EINVAL;
        // iopt_alloc_area_pages
        ulong align = ioas.IovaAlignment;
        if ((cmd.length & (align - 1)) != 0) return -Errno.EINVAL;
        ulong iova;
        if ((cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) == 0)
        {
            if (!AllocIova(ioas, cmd.length, Math.Max(align, 4096UL), out iova)) return -Errno.ENOSPC;
        }
        else
        {
            iova = cmd.iova;
            // iopt_check_iova
            if ((iova & (align - 1)) != 0) return -Errno.EINVAL;
            if (iova + (cmd.length - 1) < iova) return -Errno.EOVERFLOW;
            ulong last = iova + cmd.length - 1;
            if (ioas.Reserved(Kernel.Configuration).Any(r => r.Start <= last && r.Last >= iova)) return -Errno.EINVAL;
            if (ioas.FirstIntersecting(iova, last) is not null) return -Errno.EEXIST;
        }
        // iopt_insert_area: the user address's offset in its page must keep the IOAS's alignment, so behind a domain
        // or a pinning access (4 KiB) the memory must start on a page (the lab's kernel answered EINVAL to memory
        // from malloc, 16 bytes into a page).
        if (((cmd.user_va % 4096) & (align - 1)) != 0) return -Errno.EINVAL;
        // With a domain, the pages are pinned now (iopt_fill_domains_pages): memory that is not there faults.
        if (ioas.Hwpts.Count > 0 && !UserMemory.AccessOk(cmd.user_va, cmd.length)) return -Errno.EFAULT;
        ioas.Areas.Add(iova, new SimIoptArea(iova, cmd.length, cmd.user_va, (cmd.flags & IOMMU_IOAS_MAP_WRITEABLE) != 0));
        cmd.iova = iova;
        StructBytes.Write(b, cmd);
        return 0;
    }

    /// <summary>iopt_alloc_iova, simplified: the lowest aligned free span in an allowed range.</summary>
    private bool AllocIova(SimIoas ioas, ulong length, ulong align, out ulong iova)
    {
        foreach (var (start, last) in ioas.Allowed(Kernel.Configuration))
        {
            ulong cur = (start + align - 1) & ~(align - 1);
            while (cur >= start && cur <= last && last - cur >= length - 1)
            {
                var clash = ioas.FirstIntersecting(cur, cur + length - 1);
                if (clash is null) { iova = cur; return true; }
                if (clash.Last == ulong.MaxValue) break;
                cur = (clash.Last + 1 + align - 1) & ~(align - 1);
            }
        }
        iova = 0;
        return false;
    }

    private int IoasUnmap(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_ioas_unmap>(b);
        var ioas = Get<SimIoas>(cmd.ioas_id);
        if (ioas is null) return -Errno.ENOENT;
        ulong unmapped;
        if (cmd.iova == 0 && cmd.length == ulong.MaxValue)
        {
            // iopt_unmap_all: an empty IOAS unmaps "everything" fine.
            unmapped = 0;
            foreach (var a in ioas.Areas.Values.ToArray()) unmapped += Remove(ioas, a);
        }
        else
        {
            if (cmd.iova >= ulong.MaxValue || cmd.length >= ulong.MaxValue) return -Errno.EOVERFLOW;
            if (cmd.length == 0) return -Errno.EINVAL;
            if (cmd.iova + (cmd.length - 1) < cmd.iova) return -Errno.EOVERFLOW;
            ulong last = cmd.iova + cmd.length - 1;
            // iopt_unmap_iova_range: only whole areas; none at all is ENOENT.
            var hit = ioas.Areas.Values.Where(a => a.Iova <= last && a.Last >= cmd.iova).ToArray();
            if (hit.Any(a => a.Iova < cmd.iova || a.Last > last)) return -Errno.ENOENT;
            if (hit.Length == 0) return -Errno.ENOENT;
            unmapped = 0;
            foreach (var a in hit) unmapped += Remove(ioas, a);
        }
        cmd.length = unmapped;
        StructBytes.Write(b, cmd);
        return 0;
    }

    private static ulong Remove(SimIoas ioas, SimIoptArea area)
    {
        ioas.Areas.Remove(area.Iova);
        // The IOPTEs go, and their dirty bits with them.
        foreach (var h in ioas.Hwpts) h.DirtyPages.RemoveWhere(p => p >= area.Iova && p <= area.Last);
        return area.Length;
    }

    // ---- HWPT (hw_pagetable.c) and the drivers' domain_alloc_user ---------------------------------

    private int HwptAlloc(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_hwpt_alloc>(b);
        const uint known = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID;
        if ((cmd.flags & ~known) != 0 || cmd.__reserved != 0) return -Errno.EOPNOTSUPP;
        if ((cmd.data_type == IOMMU_HWPT_DATA_NONE) != (cmd.data_len == 0)) return -Errno.EINVAL;
        var idev = Get<SimIommufdDevice>(cmd.dev_id);
        if (idev is null) return -Errno.ENOENT;
        if (!_objects.TryGetValue(cmd.pt_id, out var pt)) return -Errno.ENOENT;
        if (pt is SimHwpt) return -Errno.EOPNOTSUPP;   // a nested HWPT needs driver data (iommufd_hwpt_nested_alloc)
        if (pt is not SimIoas ioas) return -Errno.EINVAL;
        // iommufd_hwpt_paging_alloc: FAULT_ID_VALID belongs to nested HWPTs; user data to nested ones too.
        if ((cmd.flags & IOMMU_HWPT_FAULT_ID_VALID) != 0 || cmd.data_type != IOMMU_HWPT_DATA_NONE) return -Errno.EOPNOTSUPP;
        int rc = DomainAllocUser(HardwareOf(idev.Device), cmd.flags);
        if (rc < 0) return rc;
        // iopt_table_add_domain reserves past the aperture: mappings already there are in the way.
        var hwpt = new SimHwpt(ioas, auto: false, dirtyOps: (cmd.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) != 0);
        ioas.Hwpts.Add(hwpt);
        var reserved = ioas.Reserved(Kernel.Configuration);
        if (ioas.Areas.Values.Any(a => reserved.Any(r => r.Start <= a.Last && r.Last >= a.Iova)))
        {
            ioas.Hwpts.Remove(hwpt);
            return -Errno.EADDRINUSE;
        }
        cmd.out_hwpt_id = Add(hwpt);
        StructBytes.Write(b, cmd);
        return 0;
    }

    /// <summary>
    /// intel_iommu_domain_alloc_user (drivers/iommu/intel/iommu.c) or amd_iommu_domain_alloc_user
    /// (drivers/iommu/amd/iommu.c): 0, or EOPNOTSUPP for a nesting parent the IOMMU cannot nest under, or a
    /// dirty-tracking domain the IOMMU cannot track (no SSADS/SMPWC, no HDSup).
    /// </summary>
    private static int DomainAllocUser(SimIommuHardware hardware, uint flags)
    {
        bool nest = (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) != 0, dirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) != 0;
        if (nest && !hardware.NestParent) return -Errno.EOPNOTSUPP;
        if (dirty && !hardware.DirtyTracking) return -Errno.EOPNOTSUPP;
        return 0;
    }

    /// <summary>
    /// The driver's attach_dev for a physical device: EINVAL for a dirty-tracking domain on an IOMMU that cannot
    /// track (intel prepare_domain_attach_device, amd attach_device), and, on VT-d in scalable mode without
    /// second-stage translation, for a user (second-stage) domain.
    /// </summary>
    private static int DriverAttach(SimIommuHardware hardware, SimHwpt hwpt)
    {
        if (hwpt.DirtyOps && !hardware.DirtyTracking) return -Errno.EINVAL;
        if (!hwpt.Auto && !hardware.SecondStage) return -Errno.EINVAL;
        return 0;
    }

    private int GetHwInfo(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_hw_info>(b);
        if (cmd.flags != 0 || cmd.__reserved != 0) return -Errno.EOPNOTSUPP;
        var idev = Get<SimIommufdDevice>(cmd.dev_id);
        if (idev is null) return -Errno.ENOENT;
        var hardware = HardwareOf(idev.Device);
        byte[] data;
        if (hardware.Model == SimIommuModel.IntelVtd)
        {
            // intel_iommu_hw_info: struct iommu_hw_info_vtd with the registers as read.
            data = StructBytes.Buffer(new iommu_hw_info_vtd { cap_reg = hardware.Cap, ecap_reg = hardware.Ecap });
            cmd.out_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
        }
        else
        {
            // AMD-Vi has no hw_info op in 6.12: type NONE, no data.
            data = Array.Empty<byte>();
            cmd.out_data_type = IOMMU_HW_INFO_TYPE_NONE;
        }
        int copy = (int)Math.Min(cmd.data_len, (uint)data.Length);
        if (copy > 0 && !UserMemory.CopyToUser(cmd.data_uptr, data.AsSpan(0, copy))) return -Errno.EFAULT;
        if (copy < cmd.data_len && !UserMemory.CopyToUser(cmd.data_uptr + (ulong)copy, new byte[cmd.data_len - copy])) return -Errno.EFAULT;
        cmd.data_len = (uint)data.Length;
        cmd.out_capabilities = hardware.DirtyTracking ? IOMMU_HW_CAP_DIRTY_TRACKING : 0;
        StructBytes.Write(b, cmd);
        return 0;
    }

    private int SetDirtyTracking(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_hwpt_set_dirty_tracking>(b);
        if ((cmd.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) != 0) return -Errno.EOPNOTSUPP;
        var hwpt = Get<SimHwpt>(cmd.hwpt_id);
        if (hwpt is null) return -Errno.ENOENT;
        // iopt_set_dirty_tracking: a domain without dirty_ops cannot.
        if (!hwpt.DirtyOps) return -Errno.EOPNOTSUPP;
        bool enable = (cmd.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) != 0;
        // Enabling first clears what the IOPTEs recorded before (iopt_clear_dirty_data).
        if (enable) hwpt.DirtyPages.Clear();
        hwpt.DirtyEnabled = enable;
        return 0;
    }

    private int GetDirtyBitmap(byte[] b)
    {
        var cmd = StructBytes.Read<iommu_hwpt_get_dirty_bitmap>(b);
        if ((cmd.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) != 0 || cmd.__reserved != 0) return -Errno.EOPNOTSUPP;
        var hwpt = Get<SimHwpt>(cmd.hwpt_id);
        if (hwpt is null) return -Errno.ENOENT;
        // The devices' DMA up to now.
        foreach (var d in hwpt.Devices.ToArray()) d.Device.Tick();
        // iommufd_check_iova_range
        ulong align = hwpt.Ioas.IovaAlignment;
        if (cmd.length == 0) return -Errno.EINVAL;
        ulong lengthLess1 = cmd.length - 1;
        if (cmd.iova > ulong.MaxValue - lengthLess1) return -Errno.EOVERFLOW;
        ulong last = cmd.iova + lengthLess1;
        if ((cmd.iova & (align - 1)) != 0 || (unchecked(last + 1) & (align - 1)) != 0) return -Errno.EINVAL;
        if (cmd.page_size == 0) return -Errno.EINVAL;
        if ((cmd.iova & (cmd.page_size - 1)) != 0 || (unchecked(last + 1) & (cmd.page_size - 1)) != 0) return -Errno.EINVAL;
        // iommu_read_and_clear_dirty
        if (!hwpt.DirtyOps) return -Errno.EOPNOTSUPP;
        ulong bits = (last - cmd.iova) / cmd.page_size + 1;
        if (!UserMemory.AccessOk(cmd.data, (bits + 63) / 64 * 8)) return -Errno.EFAULT;
        bool clear = (cmd.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) == 0;
        // __iommu_read_and_clear_dirty walks the contiguous areas of the range: a hole ends it with EINVAL, after
        // what came before the hole was read (and cleared).
        var words = new SortedDictionary<ulong, ulong>();
        ulong cur = cmd.iova;
        int rc = -Errno.EINVAL;
        foreach (var area in hwpt.Ioas.Areas.Values)
        {
            if (area.Last < cur) continue;
            if (area.Iova > cur) break;
            ulong end = Math.Min(last, area.Last);
            // The driver's read_and_clear_dirty refuses a bitmap while tracking is off (intel_iommu_read_and_clear_dirty,
            // amd_iommu_read_and_clear_dirty, the selftest's mock: "!dirty_tracking && dirty->bitmap"; the lab's mock
            // domain answered EINVAL before tracking started and after it stopped).
            if (!hwpt.DirtyEnabled) return -Errno.EINVAL;
            foreach (ulong page in hwpt.DirtyPages.Where(p => p + 4095 >= cur && p <= end).ToArray())
            {
                // iova_bitmap_set: every page_size bit the dirty 4 KiB IOPTE touches, clipped to the range.
                ulong from = Math.Max(page, cur), to = Math.Min(page + 4095, end);
                for (ulong bit = (from - cmd.iova) / cmd.page_size; bit <= (to - cmd.iova) / cmd.page_size; bit++)
                    words[bit / 64] = words.GetValueOrDefault(bit / 64) | (1UL << (int)(bit % 64));
                if (clear) hwpt.DirtyPages.Remove(page);
            }
            if (end == last) { rc = 0; break; }
            cur = end + 1;
        }
        // The copy-out only sets bits: the caller's other bits stay as they were.
        foreach (var (index, value) in words)
            if (OrUserWord(cmd.data + index * 8, value) < 0) return -Errno.EFAULT;
        return rc;
    }

    private static int OrUserWord(ulong address, ulong bits)
    {
        Span<byte> word = stackalloc byte[8];
        if (!UserMemory.CopyFromUser(word, address)) return -Errno.EFAULT;
        BinaryPrimitives.WriteUInt64LittleEndian(word, BinaryPrimitives.ReadUInt64LittleEndian(word) | bits);
        return UserMemory.CopyToUser(address, word) ? 0 : -Errno.EFAULT;
    }

    // ---- what the vfio cdev asks of the context (vfio/iommufd.c, iommufd/device.c) -----------------

    /// <summary>iommufd_device_bind (a physical device) or iommufd_access_create (an emulated one): the object's id.</summary>
    internal uint Bind(SimDevice device) =>
        Add(device.IsMdev ? new SimIommufdAccess(device) : new SimIommufdDevice(device));

    /// <summary>VFIO_DEVICE_ATTACH_IOMMUFD_PT for a bound object: 0 with the HWPT used in <paramref name="ptId"/>, or -errno.</summary>
    internal int Attach(SimIommufdObject bound, ref uint ptId)
    {
        if (bound is SimIommufdAccess access)
        {
            // iommufd_access_attach / replace: only an IOAS.
            var target = Get<SimIoas>(ptId);
            if (target is null) return -Errno.ENOENT;
            access.Ioas?.Accesses.Remove(access);
            access.Ioas = target;
            target.Accesses.Add(access);
            return 0;
        }
        var idev = (SimIommufdDevice)bound;
        if (!_objects.TryGetValue(ptId, out var pt)) return -Errno.ENOENT;
        SimHwpt hwpt;
        bool created = false;
        switch (pt)
        {
            case SimHwpt h:
                hwpt = h;
                break;
            case SimIoas ioas:
                // iommufd_device_auto_get_domain: reuse an auto domain of the IOAS, or allocate one (flags 0).
                var reuse = ioas.Hwpts.FirstOrDefault(h => h.Auto);
                if (reuse is not null)
                {
                    hwpt = reuse;
                }
                else
                {
                    hwpt = new SimHwpt(ioas, auto: true, dirtyOps: false);
                    created = true;
                }
                break;
            default:
                return -Errno.EINVAL;
        }
        if (hwpt == idev.Hwpt) { ptId = hwpt.Id; return 0; }
        int rc = DriverAttach(HardwareOf(idev.Device), hwpt);
        if (rc < 0) return rc;
        // iopt_table_enforce_dev_resv_regions: the device's reserved regions must not hold mappings.
        var ioasOf = hwpt.Ioas;
        if (created) ioasOf.Hwpts.Add(hwpt);
        hwpt.Devices.Add(idev);
        var reserved = ioasOf.Reserved(Kernel.Configuration);
        if (ioasOf.Areas.Values.Any(a => reserved.Any(r => r.Start <= a.Last && r.Last >= a.Iova)))
        {
            hwpt.Devices.Remove(idev);
            if (created) ioasOf.Hwpts.Remove(hwpt);
            return -Errno.EADDRINUSE;
        }
        if (created) Add(hwpt);
        if (idev.Hwpt is not null) Detach(idev);   // a replace
        idev.Hwpt = hwpt;
        ptId = hwpt.Id;
        return 0;
    }

    /// <summary>VFIO_DEVICE_DETACH_IOMMUFD_PT: an auto domain goes with its last device.</summary>
    internal void Detach(SimIommufdObject bound)
    {
        if (bound is SimIommufdAccess access)
        {
            access.Ioas?.Accesses.Remove(access);
            access.Ioas = null;
            return;
        }
        var idev = (SimIommufdDevice)bound;
        if (idev.Hwpt is not { } hwpt) return;
        hwpt.Devices.Remove(idev);
        idev.Hwpt = null;
        if (hwpt.Auto && hwpt.Devices.Count == 0)
        {
            hwpt.Ioas.Hwpts.Remove(hwpt);
            _objects.Remove(hwpt.Id);
        }
    }

    /// <summary>The unbind at the cdev's last close.</summary>
    internal void Unbind(SimIommufdObject bound)
    {
        Detach(bound);
        _objects.Remove(bound.Id);
    }

    /// <summary>The context lives on while bound devices hold it (the kernel's reference): nothing is torn down here.</summary>
    public override void Release() { }
}
