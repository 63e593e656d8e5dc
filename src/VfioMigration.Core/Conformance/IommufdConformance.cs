using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.IommufdConstants;

namespace VfioMigration.Core.Conformance;

/// <summary>What the iommufd scenarios run against: a host with /dev/iommu and the devices' cdevs.</summary>
public sealed class IommufdTarget
{
    public required VfioHost Host { get; init; }

    /// <summary>The cdev of a vfio-pci device without migration (the lab's edu, /dev/vfio/devices/vfio0).</summary>
    public string? PciCdev { get; init; }

    /// <summary>The cdev of the mtty mdev (/dev/vfio/devices/vfio2 in the reference kernel).</summary>
    public string? MdevCdev { get; init; }
}

/// <summary>
/// The iommufd scenarios: raw calls through the seam on /dev/iommu and the vfio cdevs, recording each answer in
/// the conformance suite's vocabulary. They are the probe of docs/iommufd.md section 4 step for step, and its
/// answers (what a real 6.12.117 kernel with IOMMUFD gave under QEMU's intel-iommu) are the reference file
/// Conformance/Reference/iommufd.txt, transcribed by hand: no lab run writes them yet (docs/iommufd.md,
/// "What the lab proves"). They are not part of <see cref="ConformanceRunner.Scenarios"/>, which the Debian
/// lab kernel (no iommufd) runs.
/// </summary>
public static class IommufdConformance
{
    /// <summary>The scenarios, in order.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "iommufd-vfio-pci", "iommufd-mdev" };

    private const ulong Iova = 0x100000;
    private const ulong Length = 2UL << 20;

    /// <summary>Runs the named scenarios (all by default) that apply to the target.</summary>
    public static IReadOnlyList<Observation> Run(IommufdTarget target, IEnumerable<string>? only = null)
    {
        var names = only?.ToHashSet(StringComparer.Ordinal) ?? Names.ToHashSet(StringComparer.Ordinal);
        var r = new ConformanceRecorder();
        foreach (string name in Names.Where(names.Contains))
        {
            r.Begin(name);
            try
            {
                switch (name)
                {
                    case "iommufd-vfio-pci" when target.PciCdev is not null: VfioPci(target, r); break;
                    case "iommufd-mdev" when target.MdevCdev is not null: Mdev(target, r); break;
                }
            }
            catch (VfioNativeException e)
            {
                r.Record("unexpected failure", $"{e.Operation} {e.ErrnoName}");
            }
        }
        return r.Observations;
    }

    /// <summary>The reference answers (docs/iommufd.md section 4), from the file embedded in Core.</summary>
    public static IReadOnlyList<Observation> Reference()
    {
        using var stream = typeof(IommufdConformance).Assembly.GetManifestResourceStream("VfioMigration.Core.Conformance.Reference.iommufd.txt")
            ?? throw new InvalidOperationException("the iommufd reference file is not embedded in Core");
        using var reader = new StreamReader(stream);
        var list = new List<Observation>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var parts = line.Split(" | ");
            list.Add(new Observation(parts[0].Trim(), parts[1].Trim(), parts[2].Trim()));
        }
        return list;
    }

    // ---- section 4.1: vfio-pci edu through its cdev and /dev/iommu ----------------------------------

    private static void VfioPci(IommufdTarget t, ConformanceRecorder r)
    {
        var host = t.Host;
        r.Record("/dev/iommu", host.Kernel.Files.Exists(IommuPath) ? "present" : "absent");
        using var iommufd = host.Open(IommuPath);
        using var dev = host.Open(t.PciCdev!);
        DeviceScenarioCallsInfo(host, dev, r, "VFIO_DEVICE_GET_INFO before bind");
        uint devId = Bind(host, dev, iommufd, r, "VFIO_DEVICE_BIND_IOMMUFD");
        DeviceScenarioCallsInfo(host, dev, r, "VFIO_DEVICE_GET_INFO after bind");
        HwInfo(host, iommufd, devId, r, "IOMMU_GET_HW_INFO");
        uint ioas = IoasAlloc(host, iommufd, r);
        IovaRanges(host, iommufd, ioas, r, "IOMMU_IOAS_IOVA_RANGES (nothing attached)");
        HwptAlloc(host, iommufd, devId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, r, "IOMMU_HWPT_ALLOC DIRTY_TRACKING");
        HwptAlloc(host, iommufd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, r, "IOMMU_HWPT_ALLOC NEST_PARENT");
        uint hwpt = HwptAlloc(host, iommufd, devId, ioas, 0, r, "IOMMU_HWPT_ALLOC flags 0");
        Attach(host, dev, hwpt, r, "VFIO_DEVICE_ATTACH_IOMMUFD_PT hwpt");
        using var memory = GuestMemory.Map(host, (long)Length);
        r.Result("IOMMU_IOAS_MAP (FIXED_IOVA, R/W)", Map(host, iommufd, ioas, Iova, Length, (ulong)memory.Address));
        using (var other = GuestMemory.Map(host, 2 * (long)Length))
            r.Result("IOMMU_IOAS_MAP from memory 16 bytes into a page", Map(host, iommufd, ioas, 4 * Length, Length, (ulong)other.Address + 16));
        r.Result("IOMMU_HWPT_SET_DIRTY_TRACKING enable", SetDirty(host, iommufd, hwpt, true));
        r.Result("IOMMU_HWPT_SET_DIRTY_TRACKING disable", SetDirty(host, iommufd, hwpt, false));
        using (var bitmap = new NativeBuffer(64))
            r.Result("IOMMU_HWPT_GET_DIRTY_BITMAP", GetBitmap(host, iommufd, hwpt, Iova, Length, 4096, bitmap.Address, 0));
        uint auto = Attach(host, dev, ioas, r, "attach with the IOAS id (auto domain)", withPt: true);
        r.Result("auto hwpt: SET_DIRTY_TRACKING", SetDirty(host, iommufd, auto, true));
        using (var bitmap = new NativeBuffer(64))
            r.Result("auto hwpt: GET_DIRTY_BITMAP", GetBitmap(host, iommufd, auto, Iova, Length, 4096, bitmap.Address, 0));
        r.Result("IOMMU_HWPT_SET_DIRTY_TRACKING with the IOAS id", SetDirty(host, iommufd, ioas, true));
        var probe = Feature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VfioConstants.VFIO_DEVICE_FEATURE_PROBE | VfioConstants.VFIO_DEVICE_FEATURE_SET, 0);
        r.Result("DMA logging START PROBE", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, probe));
        r.Result("VFIO_DEVICE_DETACH_IOMMUFD_PT", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_DETACH_IOMMUFD_PT,
            StructBytes.Buffer(new vfio_device_detach_iommufd_pt { argsz = 8 })));
        r.Result("IOMMU_DESTROY hwpt", Destroy(host, iommufd, hwpt));
        // (The probe did not unmap or destroy the IOAS: no answer of the real kernel to compare.)
        Unmap(host, iommufd, ioas, Iova, Length, out _);
        Destroy(host, iommufd, ioas);
    }

    // ---- section 4.2: the mtty mdev through its cdev -------------------------------------------------

    private static void Mdev(IommufdTarget t, ConformanceRecorder r)
    {
        var host = t.Host;
        using var iommufd = host.Open(IommuPath);
        using var dev = host.Open(t.MdevCdev!);
        uint devId = Bind(host, dev, iommufd, r, "mdev: VFIO_DEVICE_BIND_IOMMUFD", withId: false);
        HwInfo(host, iommufd, devId, r, "mdev: IOMMU_GET_HW_INFO with its id");
        uint ioas = IoasAlloc(host, iommufd, r);
        HwptAlloc(host, iommufd, devId, ioas, 0, r, "mdev: IOMMU_HWPT_ALLOC flags 0 with its id");
        HwptAlloc(host, iommufd, devId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, r, "mdev: IOMMU_HWPT_ALLOC DIRTY_TRACKING with its id");
        Attach(host, dev, ioas, r, "mdev: attach to the IOAS");
        using var memory = GuestMemory.Map(host, (long)Length);
        r.Result("mdev: IOMMU_IOAS_MAP", Map(host, iommufd, ioas, Iova, Length, (ulong)memory.Address));
        using (var other = GuestMemory.Map(host, 2 * (long)Length))
            r.Result("mdev: IOMMU_IOAS_MAP from memory 16 bytes into a page", Map(host, iommufd, ioas, 4 * Length, Length, (ulong)other.Address + 16));
        const uint set = VfioConstants.VFIO_DEVICE_FEATURE_SET, get = VfioConstants.VFIO_DEVICE_FEATURE_GET, probe = VfioConstants.VFIO_DEVICE_FEATURE_PROBE;
        r.Result("mdev: PROBE|SET DMA_LOGGING_START", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, Feature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, probe | set, 0)));
        using var range = new NativeBuffer(16);
        StructBytes.Write(range.Span, new vfio_device_feature_dma_logging_range { iova = Iova, length = Length });
        var start = Feature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, set, 24);
        StructBytes.Write(start, new vfio_device_feature_dma_logging_control { page_size = 4096, num_ranges = 1, ranges = range.Address }, 8);
        r.Result("mdev: SET DMA_LOGGING_START", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, start));
        using var bitmap = new NativeBuffer(64);
        bitmap.Span.Fill(0xa5);
        r.Result("mdev: GET DMA_LOGGING_REPORT", Report(host, dev, Iova, Length, 4096, bitmap.Address));
        r.Record("mdev: the caller's bitmap", bitmap.Span.IndexOfAnyExcept((byte)0xa5) < 0 ? "untouched" : "written");
        r.Result("mdev: REPORT page_size 2048", Report(host, dev, Iova, Length, 2048, bitmap.Address));
        r.Result("mdev: REPORT length 0", Report(host, dev, Iova, 0, 4096, bitmap.Address));
        var none = Feature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, set, 24);
        StructBytes.Write(none, new vfio_device_feature_dma_logging_control { page_size = 4096, num_ranges = 0, ranges = range.Address }, 8);
        r.Result("mdev: START num_ranges 0", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, none));
        r.Result("mdev: SET DMA_LOGGING_STOP", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, Feature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, set, 0)));
        r.Result("mdev: PROBE|GET MIGRATION", host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, Feature(VfioConstants.VFIO_DEVICE_FEATURE_MIGRATION, probe | get, 0)));
        Unmap(host, iommufd, ioas, Iova, Length, out _);
    }

    // (Section 4.3, the dirty path on the IOMMUFD_TEST mock domain, is IommufdDirtyBitmapScenario: the lab runs it
    // as a C harness on the real mock domain and compares it with the simulator's dirty-tracking IOMMU.)

    // ---- the calls -----------------------------------------------------------------------------------

    private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    private static byte[] Feature(uint feature, uint ops, int payload)
    {
        var buffer = new byte[8 + payload];
        StructBytes.Write(buffer, new vfio_device_feature { argsz = (uint)buffer.Length, flags = feature | ops });
        return buffer;
    }

    private static void DeviceScenarioCallsInfo(VfioHost host, SafeFd dev, ConformanceRecorder r, string step)
    {
        var info = StructBytes.Buffer(new vfio_device_info { argsz = 16 });
        int rc = host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_GET_INFO, info);
        var got = StructBytes.Read<vfio_device_info>(info);
        r.Record(step, rc < 0 ? ConformanceRecorder.Answer(rc) : $"0 flags {Hex(got.flags)} regions {got.num_regions} irqs {got.num_irqs}");
    }

    private static uint Bind(VfioHost host, SafeFd dev, SafeFd iommufd, ConformanceRecorder r, string step, bool withId = true)
    {
        var bind = StructBytes.Buffer(new vfio_device_bind_iommufd { argsz = 16, iommufd = iommufd.Number });
        int rc = host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, bind);
        uint id = StructBytes.Read<vfio_device_bind_iommufd>(bind).out_devid;
        r.Record(step, rc < 0 ? ConformanceRecorder.Answer(rc) : withId ? $"0 devid {id}" : "0");
        return id;
    }

    private static void HwInfo(VfioHost host, SafeFd iommufd, uint devId, ConformanceRecorder r, string step)
    {
        using var data = new NativeBuffer(24);
        var b = StructBytes.Buffer(new iommu_hw_info { size = 40, dev_id = devId, data_len = 24, data_uptr = data.Address });
        int rc = host.TryIoctl(iommufd, IommufdIoctl.IOMMU_GET_HW_INFO, b);
        if (rc < 0) { r.Record(step, ConformanceRecorder.Answer(rc)); return; }
        var info = StructBytes.Read<iommu_hw_info>(b);
        string regs = info.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD ? $" ecap {Hex(StructBytes.Read<iommu_hw_info_vtd>(data.Span).ecap_reg)}" : "";
        r.Record(step, $"0 type {info.out_data_type} data_len {info.data_len}{regs} capabilities {Hex(info.out_capabilities)}");
    }

    private static uint IoasAlloc(VfioHost host, SafeFd iommufd, ConformanceRecorder r)
    {
        var b = StructBytes.Buffer(new iommu_ioas_alloc { size = 12 });
        r.Result("IOMMU_IOAS_ALLOC", host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_ALLOC, b));
        return StructBytes.Read<iommu_ioas_alloc>(b).out_ioas_id;
    }

    private static void IovaRanges(VfioHost host, SafeFd iommufd, uint ioas, ConformanceRecorder r, string step)
    {
        using var ranges = new NativeBuffer(16 * 8);
        var b = StructBytes.Buffer(new iommu_ioas_iova_ranges { size = 32, ioas_id = ioas, num_iovas = 8, allowed_iovas = ranges.Address });
        int rc = host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_IOVA_RANGES, b);
        if (rc < 0) { r.Record(step, ConformanceRecorder.Answer(rc)); return; }
        var got = StructBytes.Read<iommu_ioas_iova_ranges>(b);
        var list = Enumerable.Range(0, (int)Math.Min(got.num_iovas, 8)).Select(i => StructBytes.Read<iommu_iova_range>(ranges.Span, i * 16)).Select(x => $"[{Hex(x.start)}, {Hex(x.last)}]");
        r.Record(step, $"0 {got.num_iovas} ranges {string.Join(" ", list)} alignment {got.out_iova_alignment}");
    }

    private static uint HwptAlloc(VfioHost host, SafeFd iommufd, uint devId, uint pt, uint flags, ConformanceRecorder r, string step, bool withId = true)
    {
        var b = StructBytes.Buffer(new iommu_hwpt_alloc { size = 48, flags = flags, dev_id = devId, pt_id = pt });
        int rc = host.TryIoctl(iommufd, IommufdIoctl.IOMMU_HWPT_ALLOC, b);
        uint id = StructBytes.Read<iommu_hwpt_alloc>(b).out_hwpt_id;
        r.Record(step, rc < 0 ? ConformanceRecorder.Answer(rc) : withId ? $"0 hwpt {id}" : "0");
        return rc < 0 ? 0 : id;
    }

    private static uint Attach(VfioHost host, SafeFd dev, uint pt, ConformanceRecorder r, string step, bool withPt = false)
    {
        var b = StructBytes.Buffer(new vfio_device_attach_iommufd_pt { argsz = 12, pt_id = pt });
        int rc = host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
        uint id = StructBytes.Read<vfio_device_attach_iommufd_pt>(b).pt_id;
        r.Record(step, rc < 0 ? ConformanceRecorder.Answer(rc) : withPt ? $"0 pt {id}" : "0");
        return id;
    }

    private static int Map(VfioHost host, SafeFd iommufd, uint ioas, ulong iova, ulong length, ulong va) =>
        host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_MAP, StructBytes.Buffer(new iommu_ioas_map
        {
            size = 40, flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
            ioas_id = ioas, user_va = va, length = length, iova = iova,
        }));

    private static int Unmap(VfioHost host, SafeFd iommufd, uint ioas, ulong iova, ulong length, out ulong unmapped)
    {
        var b = StructBytes.Buffer(new iommu_ioas_unmap { size = 24, ioas_id = ioas, iova = iova, length = length });
        int rc = host.TryIoctl(iommufd, IommufdIoctl.IOMMU_IOAS_UNMAP, b);
        unmapped = rc < 0 ? 0 : StructBytes.Read<iommu_ioas_unmap>(b).length;
        return rc;
    }

    private static int SetDirty(VfioHost host, SafeFd iommufd, uint hwpt, bool enable) =>
        host.TryIoctl(iommufd, IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING,
            StructBytes.Buffer(new iommu_hwpt_set_dirty_tracking { size = 16, flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id = hwpt }));

    private static int GetBitmap(VfioHost host, SafeFd iommufd, uint hwpt, ulong iova, ulong length, ulong pageSize, ulong data, uint flags) =>
        host.TryIoctl(iommufd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, StructBytes.Buffer(new iommu_hwpt_get_dirty_bitmap
        {
            size = 48, hwpt_id = hwpt, flags = flags, iova = iova, length = length, page_size = pageSize, data = data,
        }));

    private static int Destroy(VfioHost host, SafeFd iommufd, uint id) =>
        host.TryIoctl(iommufd, IommufdIoctl.IOMMU_DESTROY, StructBytes.Buffer(new iommu_destroy { size = 8, id = id }));

    private static int Report(VfioHost host, SafeFd dev, ulong iova, ulong length, ulong pageSize, ulong bitmap)
    {
        var b = Feature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, VfioConstants.VFIO_DEVICE_FEATURE_GET, 32);
        StructBytes.Write(b, new vfio_device_feature_dma_logging_report { iova = iova, length = length, page_size = pageSize, bitmap = bitmap }, 8);
        return host.TryIoctl(dev, VfioIoctl.VFIO_DEVICE_FEATURE, b);
    }
}
