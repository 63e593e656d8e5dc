using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.IommufdConstants;

namespace VfioMigration.Core.Vfio;

/// <summary>A device bound to an iommufd through its cdev.</summary>
public sealed class IommufdBoundDevice
{
    internal IommufdBoundDevice(VfioGroupDevice sysfs, string cdevPath, SafeFd fd, uint deviceId)
    {
        Sysfs = sysfs;
        CdevPath = cdevPath;
        Fd = fd;
        DeviceId = deviceId;
    }

    public VfioGroupDevice Sysfs { get; }

    public string Name => Sysfs.Name;

    /// <summary>/dev/vfio/devices/vfioN.</summary>
    public string CdevPath { get; }

    internal SafeFd Fd { get; }

    /// <summary>The device's object id in the iommufd (a DEVICE object for a PCI function, an ACCESS object for an mdev).</summary>
    public uint DeviceId { get; }

    /// <summary>An mdev: bound as an emulated device (an iommufd access); it attaches to the IOAS only and has no IOMMU of its own.</summary>
    public bool IsEmulated => Sysfs.Bus == "mdev";

    /// <summary>The IOAS or HWPT the device is attached to, or 0.</summary>
    public uint AttachedTo { get; internal set; }

    /// <summary>What IOMMU_GET_HW_INFO said (physical devices only).</summary>
    public IommuHardwareInfo? Hardware { get; internal set; }
}

/// <summary>
/// An iommufd context (/dev/iommu) of this process, through the seam: the IOAS the container maps into, the
/// bound devices, the HWPT they are attached to. Each method is one ioctl of linux/iommufd.h or of the vfio
/// cdev, raising VfioNativeException with the ioctl's C name and errno.
/// </summary>
public sealed class IommufdContext : IDisposable
{
    private IommufdContext(VfioHost host, SafeFd fd)
    {
        Host = host;
        Fd = fd;
    }

    public VfioHost Host { get; }

    internal SafeFd Fd { get; }

    /// <summary>Opens /dev/iommu, saying what is missing when the kernel has no iommufd.</summary>
    public static IommufdContext Open(VfioHost host)
    {
        if (!host.Kernel.Files.Exists(IommuPath))
            throw new VfioRuleException("IommufdNotPresent",
                $"{host.Description} has no {IommuPath}: its kernel is built without CONFIG_IOMMUFD (or the iommufd module is not loaded); use the legacy container (-Backend Legacy), or modprobe iommufd.");
        return new IommufdContext(host, host.Open(IommuPath));
    }

    /// <summary>The cdev of a device (<c>&lt;device&gt;/vfio-dev/vfioN</c> in sysfs), or null when the kernel has none (CONFIG_VFIO_DEVICE_CDEV off).</summary>
    public static string? CdevPath(IHostFiles files, VfioGroupDevice device)
    {
        string folder = $"/sys/bus/{device.Bus}/devices/{device.Name}/vfio-dev";
        string? name = files.List(folder).FirstOrDefault(n => n.StartsWith("vfio", StringComparison.Ordinal));
        return name is null ? null : $"{DeviceCdevFolder}/{name}";
    }

    /// <summary>IOMMU_IOAS_ALLOC.</summary>
    public uint AllocIoas()
    {
        var b = StructBytes.Buffer(new iommu_ioas_alloc { size = (uint)StructBytes.SizeOf<iommu_ioas_alloc>() });
        Host.Ioctl(Fd, IommufdIoctl.IOMMU_IOAS_ALLOC, b);
        return StructBytes.Read<iommu_ioas_alloc>(b).out_ioas_id;
    }

    /// <summary>Opens a device's cdev and binds it (VFIO_DEVICE_BIND_IOMMUFD); EBUSY says the group is open elsewhere.</summary>
    public IommufdBoundDevice Bind(VfioGroupDevice device)
    {
        string path = CdevPath(Host.Kernel.Files, device)
            ?? throw new VfioRuleException("NoDeviceCdev", $"{device.Name} has no vfio cdev (/sys/bus/{device.Bus}/devices/{device.Name}/vfio-dev): the kernel is built without CONFIG_VFIO_DEVICE_CDEV; use the legacy container (-Backend Legacy).");
        var fd = Host.Open(path);
        try
        {
            var b = StructBytes.Buffer(new vfio_device_bind_iommufd { argsz = (uint)StructBytes.SizeOf<vfio_device_bind_iommufd>(), iommufd = Fd.Number });
            int rc = Host.TryIoctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, b, device.Name);
            if (rc == -Errno.EBUSY)
                throw new VfioNativeException(VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD.Name, Errno.EBUSY, path,
                    $"group {device.Group} of {device.Name} is open through /dev/vfio/{device.Group} (here or in another process): a device binds to iommufd only while its group is not open");
            if (rc < 0) throw new VfioNativeException(VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD.Name, -rc, path, device.Name);
            return new IommufdBoundDevice(device, path, fd, StructBytes.Read<vfio_device_bind_iommufd>(b).out_devid);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>IOMMU_GET_HW_INFO for a bound physical device, VT-d registers decoded; AMD-Vi's EFR from sysfs.</summary>
    public IommuHardwareInfo GetHardwareInfo(IommufdBoundDevice device)
    {
        var data = new byte[StructBytes.SizeOf<iommu_hw_info_vtd>()];
        var handle = GCHandle.Alloc(data, GCHandleType.Pinned);
        try
        {
            var b = StructBytes.Buffer(new iommu_hw_info
            {
                size = (uint)StructBytes.SizeOf<iommu_hw_info>(),
                dev_id = device.DeviceId,
                data_len = (uint)data.Length,
                data_uptr = (ulong)handle.AddrOfPinnedObject(),
            });
            Host.Ioctl(Fd, IommufdIoctl.IOMMU_GET_HW_INFO, b, device.Name);
            var info = StructBytes.Read<iommu_hw_info>(b);
            var type = info.out_data_type switch
            {
                IOMMU_HW_INFO_TYPE_INTEL_VTD => IommuHardwareType.IntelVtd,
                IOMMU_HW_INFO_TYPE_ARM_SMMUV3 => IommuHardwareType.ArmSmmuV3,
                _ => IommuHardwareType.Unknown,
            };
            var vtd = type == IommuHardwareType.IntelVtd && info.data_len >= data.Length ? StructBytes.Read<iommu_hw_info_vtd>(data) : (iommu_hw_info_vtd?)null;
            ulong? efr = type == IommuHardwareType.Unknown ? AmdEfrFromSysfs(Host.Kernel.Files) : null;
            return new IommuHardwareInfo
            {
                Device = device.Name,
                DeviceId = device.DeviceId,
                Type = efr is not null ? IommuHardwareType.AmdVi : type,
                Capabilities = info.out_capabilities,
                VtdCap = vtd?.cap_reg,
                VtdEcap = vtd?.ecap_reg,
                AmdEfr = efr,
                HostKind = Host.Kind,
            };
        }
        finally
        {
            handle.Free();
        }
    }

    /// <summary>/sys/class/iommu/ivhdN/amd-iommu/features ("efr:efr2" in hex), or null on a host without AMD-Vi.</summary>
    private static ulong? AmdEfrFromSysfs(IHostFiles files)
    {
        foreach (string name in files.List("/sys/class/iommu"))
        {
            if (!name.StartsWith("ivhd", StringComparison.Ordinal)) continue;
            string? text = files.ReadText($"/sys/class/iommu/{name}/amd-iommu/features");
            if (text is null) continue;
            string first = text.Split(':')[0].Trim();
            if (ulong.TryParse(first, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong efr)) return efr;
        }
        return null;
    }

    /// <summary>IOMMU_HWPT_ALLOC on the IOAS for a device: the HWPT id, or -errno (EOPNOTSUPP: the IOMMU cannot give such a domain).</summary>
    public int TryAllocHwpt(uint deviceId, uint ioasId, uint flags, out uint hwptId)
    {
        var b = StructBytes.Buffer(new iommu_hwpt_alloc { size = (uint)StructBytes.SizeOf<iommu_hwpt_alloc>(), flags = flags, dev_id = deviceId, pt_id = ioasId });
        int rc = Host.TryIoctl(Fd, IommufdIoctl.IOMMU_HWPT_ALLOC, b, $"dev {deviceId} ioas {ioasId} flags 0x{flags:x}");
        hwptId = rc < 0 ? 0 : StructBytes.Read<iommu_hwpt_alloc>(b).out_hwpt_id;
        return rc;
    }

    /// <summary>VFIO_DEVICE_ATTACH_IOMMUFD_PT: the HWPT the device is attached to (the auto domain's for an IOAS), or -errno.</summary>
    public int TryAttach(IommufdBoundDevice device, uint ptId, out uint attachedTo)
    {
        var b = StructBytes.Buffer(new vfio_device_attach_iommufd_pt { argsz = (uint)StructBytes.SizeOf<vfio_device_attach_iommufd_pt>(), pt_id = ptId });
        int rc = Host.TryIoctl(device.Fd, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT, b, $"pt {ptId}");
        attachedTo = rc < 0 ? 0 : StructBytes.Read<vfio_device_attach_iommufd_pt>(b).pt_id;
        if (rc == 0) device.AttachedTo = attachedTo;
        return rc;
    }

    /// <summary>VFIO_DEVICE_DETACH_IOMMUFD_PT; failures are returned as -errno.</summary>
    public int TryDetach(IommufdBoundDevice device)
    {
        var b = StructBytes.Buffer(new vfio_device_detach_iommufd_pt { argsz = (uint)StructBytes.SizeOf<vfio_device_detach_iommufd_pt>() });
        int rc = Host.TryIoctl(device.Fd, VfioIoctl.VFIO_DEVICE_DETACH_IOMMUFD_PT, b);
        if (rc == 0) device.AttachedTo = 0;
        return rc;
    }

    /// <summary>IOMMU_IOAS_IOVA_RANGES: the allowed ranges (inclusive ends) and the IOVA alignment, asking again when EMSGSIZE says more.</summary>
    public (IReadOnlyList<(ulong Start, ulong Last)> Ranges, ulong Alignment) IovaRanges(uint ioasId)
    {
        uint room = 4;
        while (true)
        {
            var ranges = new byte[room * 16];
            var handle = GCHandle.Alloc(ranges, GCHandleType.Pinned);
            try
            {
                var b = StructBytes.Buffer(new iommu_ioas_iova_ranges { size = (uint)StructBytes.SizeOf<iommu_ioas_iova_ranges>(), ioas_id = ioasId, num_iovas = room, allowed_iovas = (ulong)handle.AddrOfPinnedObject() });
                int rc = Host.TryIoctl(Fd, IommufdIoctl.IOMMU_IOAS_IOVA_RANGES, b, $"ioas {ioasId}");
                var answer = StructBytes.Read<iommu_ioas_iova_ranges>(b);
                if (rc == -Errno.EMSGSIZE && answer.num_iovas > room) { room = answer.num_iovas; continue; }
                if (rc < 0) throw new VfioNativeException(IommufdIoctl.IOMMU_IOAS_IOVA_RANGES.Name, -rc, IommuPath, $"ioas {ioasId}");
                var list = new List<(ulong, ulong)>();
                for (int i = 0; i < answer.num_iovas; i++)
                {
                    var r = StructBytes.Read<iommu_iova_range>(ranges, i * 16);
                    list.Add((r.start, r.last));
                }
                return (list, answer.out_iova_alignment);
            }
            finally
            {
                handle.Free();
            }
        }
    }

    /// <summary>IOMMU_IOAS_MAP at a fixed IOVA.</summary>
    public void Map(uint ioasId, ulong iova, ulong length, ulong userVa, bool read, bool write)
    {
        var map = new iommu_ioas_map
        {
            size = (uint)StructBytes.SizeOf<iommu_ioas_map>(),
            flags = IOMMU_IOAS_MAP_FIXED_IOVA | (read ? IOMMU_IOAS_MAP_READABLE : 0) | (write ? IOMMU_IOAS_MAP_WRITEABLE : 0),
            ioas_id = ioasId,
            user_va = userVa,
            length = length,
            iova = iova,
        };
        Host.Ioctl(Fd, IommufdIoctl.IOMMU_IOAS_MAP, StructBytes.Buffer(map), $"iova 0x{iova:x} length 0x{length:x}");
    }

    /// <summary>IOMMU_IOAS_UNMAP of whole mappings: the bytes unmapped, or -errno.</summary>
    public int TryUnmap(uint ioasId, ulong iova, ulong length, out ulong unmapped)
    {
        var b = StructBytes.Buffer(new iommu_ioas_unmap { size = (uint)StructBytes.SizeOf<iommu_ioas_unmap>(), ioas_id = ioasId, iova = iova, length = length });
        int rc = Host.TryIoctl(Fd, IommufdIoctl.IOMMU_IOAS_UNMAP, b, $"iova 0x{iova:x} length 0x{length:x}");
        unmapped = rc < 0 ? 0 : StructBytes.Read<iommu_ioas_unmap>(b).length;
        return rc;
    }

    /// <summary>IOMMU_HWPT_SET_DIRTY_TRACKING.</summary>
    public int TrySetDirtyTracking(uint hwptId, bool enable) =>
        Host.TryIoctl(Fd, IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING,
            StructBytes.Buffer(new iommu_hwpt_set_dirty_tracking { size = 16, flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id = hwptId }),
            $"hwpt {hwptId} {(enable ? "enable" : "disable")}");

    /// <summary>IOMMU_HWPT_GET_DIRTY_BITMAP into user memory at <paramref name="data"/> (bits are only set, never cleared), or -errno.</summary>
    public int TryGetDirtyBitmap(uint hwptId, ulong iova, ulong length, ulong pageSize, ulong data, bool noClear, string? detail = null)
    {
        Span<byte> b = stackalloc byte[48];
        StructBytes.Write(b, new iommu_hwpt_get_dirty_bitmap
        {
            size = 48,
            hwpt_id = hwptId,
            flags = noClear ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0,
            iova = iova,
            length = length,
            page_size = pageSize,
            data = data,
        });
        return Host.TryIoctl(Fd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, b, detail);
    }

    /// <summary>IOMMU_DESTROY; failures are returned as -errno.</summary>
    public int TryDestroy(uint id) =>
        Host.TryIoctl(Fd, IommufdIoctl.IOMMU_DESTROY, StructBytes.Buffer(new iommu_destroy { size = 8, id = id }), $"id {id}");

    public void Dispose() => Fd.Dispose();
}
