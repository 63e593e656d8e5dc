using System;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.IommufdConstants;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// What the iommufd dirty-bitmap scenario runs against: a device behind an IOMMU that can track dirty pages,
/// and a way to make it write chosen guest pages.
/// </summary>
public sealed class IommufdDirtyTarget
{
    public required VfioHost Host { get; init; }

    /// <summary>The device's cdev (/dev/vfio/devices/vfioN).</summary>
    public required string Cdev { get; init; }

    /// <summary>Makes the device write [iova, +length) now; returns the pages written or -errno.</summary>
    public required Func<ulong, ulong, int> DeviceWrites { get; init; }
}

/// <summary>
/// The semantics of iommufd's dirty bitmaps, step for step as the lab's mock-domain harness
/// (tests/lab/iommufd/mock-harness.c) asks them of a real kernel's IOMMUFD_TEST mock domain: dirty tracking
/// refused on an automatic HWPT, a dirty-tracking HWPT, bitmaps before, during and after tracking,
/// NO_CLEAR against read-and-clear, a caller's buffer whose set bits stay set, other page sizes, every
/// refusal of the range and flags checks, and destroy and unmap. The step names and answers are the
/// harness's, so the lab compares the two transcripts line by line. On a real host no device can be made to
/// write chosen pages, so this runs where <see cref="IommufdDirtyTarget.DeviceWrites"/> exists: the simulated
/// kernel's dirty-tracking IOMMU. The harness's set-up (the mock device, its writes) is what the target's
/// device and <see cref="IommufdDirtyTarget.DeviceWrites"/> do here.
/// </summary>
public static class IommufdDirtyBitmapScenario
{
    public const string Name = "iommufd-mock-dirty";

    private const ulong Iova = 0x1000000;
    private const ulong Length = 0x40000;
    private const ulong Page = 4096;
    private const ulong EveryFourth = 0x1111111111111111;

    public static IReadOnlyList<Observation> Run(IommufdDirtyTarget t)
    {
        var r = new ConformanceRecorder();
        r.Begin(Name);
        var host = t.Host;
        using var iommufd = host.Open("/dev/iommu");
        var ioasArg = StructBytes.Buffer(new iommu_ioas_alloc { size = 12 });
        if (r.Result("IOMMU_IOAS_ALLOC", host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_ALLOC, ioasArg)) < 0) return r.Observations;
        uint ioas = StructBytes.Read<iommu_ioas_alloc>(ioasArg).out_ioas_id;

        // The harness's mock device: created on the IOAS and attached to it through an automatic HWPT.
        using var dev = host.Open(t.Cdev);
        var bind = StructBytes.Buffer(new vfio_device_bind_iommufd { argsz = 16, iommufd = iommufd.Number });
        if (SetUpFailed(r, "set-up: VFIO_DEVICE_BIND_IOMMUFD", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, bind))) return r.Observations;
        uint devId = StructBytes.Read<vfio_device_bind_iommufd>(bind).out_devid;
        var attachIoas = StructBytes.Buffer(new vfio_device_attach_iommufd_pt { argsz = 12, pt_id = ioas });
        if (SetUpFailed(r, "set-up: attach to the IOAS", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT, attachIoas))) return r.Observations;
        uint autoHwpt = StructBytes.Read<vfio_device_attach_iommufd_pt>(attachIoas).pt_id;

        using (var data = new NativeBuffer(64))
        {
            var info = StructBytes.Buffer(new iommu_hw_info { size = 40, dev_id = devId, data_len = 64, data_uptr = data.Address });
            int rc = host.TryIoctl(iommufd, IommufdIoctl.IOMMU_GET_HW_INFO, info);
            r.Record("IOMMU_GET_HW_INFO", rc < 0 ? ConformanceRecorder.Answer(rc)
                : "0 capabilities=0x" + StructBytes.Read<iommu_hw_info>(info).out_capabilities.ToString("x", CultureInfo.InvariantCulture));
        }

        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING enable, automatic HWPT", autoHwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
        var alloc = StructBytes.Buffer(new iommu_hwpt_alloc { size = 48, flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dev_id = devId, pt_id = ioas });
        if (r.Result("IOMMU_HWPT_ALLOC DIRTY_TRACKING", host.TryIoctl(iommufd, IommufdIoctl.IOMMU_HWPT_ALLOC, alloc)) < 0) return r.Observations;
        uint hwpt = StructBytes.Read<iommu_hwpt_alloc>(alloc).out_hwpt_id;
        r.Result("attach the device to the dirty-tracking HWPT", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT,
            StructBytes.Buffer(new vfio_device_attach_iommufd_pt { argsz = 12, pt_id = hwpt })));

        using var memory = GuestMemory.Map(host, (long)Length);
        if (r.Result("IOMMU_IOAS_MAP 256 KiB at 0x1000000", host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_MAP, StructBytes.Buffer(new iommu_ioas_map
            {
                size = 40, flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
                ioas_id = ioas, user_va = (ulong)memory.Address, length = Length, iova = Iova,
            }))) < 0)
            return r.Observations;

        using var bitmap = new NativeBuffer(32);
        void Get(string step, uint id, ulong iova, ulong length, ulong page, uint flags = 0, ulong fill = 0) =>
            GetBitmap(r, host, iommufd, bitmap, step, id, iova, length, page, flags, fill);
        void Mark(ulong pages)
        {
            // The pages whose bit is set in `pages`, one write each.
            for (int p = 0; p < 64; p++)
                if ((pages >> p & 1) != 0) t.DeviceWrites(Iova + (ulong)p * Page, Page);
        }

        Get("GET_DIRTY_BITMAP before tracking", hwpt, Iova, Length, Page);
        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING enable", hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING enable again", hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
        Get("GET_DIRTY_BITMAP nothing written", hwpt, Iova, Length, Page);

        Mark(EveryFourth);
        Get("GET_DIRTY_BITMAP NO_CLEAR", hwpt, Iova, Length, Page, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
        Get("GET_DIRTY_BITMAP NO_CLEAR again", hwpt, Iova, Length, Page, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
        Get("GET_DIRTY_BITMAP read and clear", hwpt, Iova, Length, Page);
        Get("GET_DIRTY_BITMAP after the clear", hwpt, Iova, Length, Page);

        Mark(EveryFourth);
        Get("GET_DIRTY_BITMAP into a buffer of 0xa5", hwpt, Iova, Length, Page, fill: 0xa5a5a5a5a5a5a5a5);
        Mark(1);
        Get("GET_DIRTY_BITMAP at 8 KiB pages", hwpt, Iova, Length, 2 * Page);
        Mark(1UL << 63);
        Get("GET_DIRTY_BITMAP the last 128 KiB", hwpt, Iova + Length / 2, Length / 2, Page);

        Get("GET_DIRTY_BITMAP length 0", hwpt, Iova, 0, Page);
        Get("GET_DIRTY_BITMAP page size 0", hwpt, Iova, Length, 0);
        Get("GET_DIRTY_BITMAP IOVA not page aligned", hwpt, Iova + 0x800, Length, Page);
        Get("GET_DIRTY_BITMAP length not page aligned", hwpt, Iova, Length - 0x800, Page);
        Get("GET_DIRTY_BITMAP past the mapping", hwpt, Iova, 2 * Length, Page);
        Get("GET_DIRTY_BITMAP before the mapping", hwpt, Iova - Length, Length, Page);
        Get("GET_DIRTY_BITMAP IOVA wraps", hwpt, 0xfffffffffffff000, 0x2000, Page);
        Get("GET_DIRTY_BITMAP unknown flag 0x80", hwpt, Iova, Length, Page, 0x80);
        Get("GET_DIRTY_BITMAP the IOAS's id", ioas, Iova, Length, Page);
        Get("GET_DIRTY_BITMAP an id that does not exist", 9999, Iova, Length, Page);

        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING unknown flag 0x2", hwpt, 0x2);
        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING the IOAS's id", ioas, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);

        Mark(EveryFourth);
        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING disable", hwpt, 0);
        Get("GET_DIRTY_BITMAP after tracking stopped", hwpt, Iova, Length, Page);
        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING disable again", hwpt, 0);
        SetTracking(r, host, iommufd, "IOMMU_HWPT_SET_DIRTY_TRACKING enable after stop", hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
        Get("GET_DIRTY_BITMAP after tracking restarted", hwpt, Iova, Length, Page);

        r.Result("IOMMU_DESTROY the HWPT a device is attached to", host.TryIoctl(iommufd, IommufdIoctl.IOMMU_DESTROY,
            StructBytes.Buffer(new iommu_destroy { size = 8, id = hwpt })));
        r.Result("IOMMU_IOAS_UNMAP", host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_UNMAP,
            StructBytes.Buffer(new iommu_ioas_unmap { size = 24, ioas_id = ioas, iova = Iova, length = Length })));
        Get("GET_DIRTY_BITMAP after the unmap", hwpt, Iova, Length, Page);
        return r.Observations;
    }

    // The harness's set-up prints no compared line when it works; a failure here is recorded (the harness stops
    // with a '#' line, so the comparison shows the difference).
    private static bool SetUpFailed(ConformanceRecorder r, string step, int rc)
    {
        if (rc >= 0) return false;
        r.Record(step, ConformanceRecorder.Answer(rc));
        return true;
    }

    private static void SetTracking(ConformanceRecorder r, VfioHost host, SafeFd iommufd, string step, uint id, uint flags) =>
        r.Result(step, host.TryIoctl(iommufd, IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING,
            StructBytes.Buffer(new iommu_hwpt_set_dirty_tracking { size = 16, flags = flags, hwpt_id = id })));

    /// <summary>A GET_DIRTY_BITMAP into four words filled with <paramref name="fill"/>, recorded as the harness prints it.</summary>
    private static void GetBitmap(ConformanceRecorder r, VfioHost host, SafeFd iommufd, NativeBuffer bitmap, string step,
        uint id, ulong iova, ulong length, ulong page, uint flags, ulong fill)
    {
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bitmap.Span);
        words.Fill(fill);
        int rc = host.TryIoctl(iommufd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, StructBytes.Buffer(new iommu_hwpt_get_dirty_bitmap
        {
            size = 48, hwpt_id = id, flags = flags, iova = iova, length = length, page_size = page, data = bitmap.Address,
        }));
        if (rc < 0) { r.Record(step, ConformanceRecorder.Answer(rc)); return; }
        ulong count = (length / (page == 0 ? 1 : page) + 63) / 64, bits = 0;
        for (int i = 0; i < (int)Math.Min(count, 4); i++) bits += (ulong)BitOperations.PopCount(words[i]);
        r.Record(step, string.Create(CultureInfo.InvariantCulture, $"0 bits={bits} word0=0x{words[0]:x16}"));
    }
}
