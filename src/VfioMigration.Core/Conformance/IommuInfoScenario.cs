using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// VFIO_IOMMU_GET_INFO with argsz growth and the capability chain (kernel-interface.md lab 7.1 and 7.3 "== VFIO_IOMMU_GET_INFO",
/// section 9): for a container holding the IOMMU-backed group (MIGRATION, DMA_AVAIL, IOVA_RANGE; 120 bytes on
/// 6.12) and for one holding only the mdev group (no IOVA_RANGE; 72 bytes, page sizes PAGE_MASK).
/// </summary>
public sealed class IommuInfoScenario : ConformanceScenario
{
    public override string Name => "iommu-info";

    public override bool AppliesTo(ConformanceTarget target) => target.IommuGroup is not null || target.MdevGroup is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        if (target.IommuGroup is { } iommuGroup)
        {
            using var container = host.Open(VfioHost.ContainerPath);
            using var group = host.Open($"/dev/vfio/{iommuGroup}");
            Setup(host, container, group, r, "IOMMU-backed");
            Report(host, container, r, "IOMMU-backed");

            // vfio_iommu_type1_get_info: argsz below offsetofend(iova_pgsizes) is refused; from 16 on the
            // needed size and the CAPS flag come back even when nothing more fits.
            int rc = Type1Calls.GetInfo(host, container, 16, out var small);
            r.Record("IOMMU-backed: VFIO_IOMMU_GET_INFO(argsz=16)", rc < 0 ? ConformanceRecorder.Answer(rc) : Head(small, withCapOffset: false));
            r.Result("IOMMU-backed: VFIO_IOMMU_GET_INFO(argsz=15)", Type1Calls.GetInfo(host, container, 15, out _, 24));

            // DMA_AVAIL counts down with each mapping (dma_entry_limit - mappings).
            using var guest = GuestMemory.Map(host, 0x200000);
            r.Result("IOMMU-backed: MAP_DMA 2 MiB", Type1Calls.MapDma(host, container, 0x10000000, 0x200000, (ulong)guest.Address));
            Type1Calls.GetInfo(host, container, 24, out var needed);
            uint argsz = StructBytes.Read<vfio_iommu_type1_info>(needed).argsz;
            rc = Type1Calls.GetInfo(host, container, argsz, out var full);
            r.Record("IOMMU-backed: DMA_AVAIL after one mapping", rc < 0 ? ConformanceRecorder.Answer(rc) : FindAvail(full));
            r.Result("IOMMU-backed: UNMAP_DMA 2 MiB", Type1Calls.UnmapDma(host, container, 0x10000000, 0x200000, out _));
        }
        if (target.MdevGroup is { } mdevGroup)
        {
            using var container = host.Open(VfioHost.ContainerPath);
            using var group = host.Open($"/dev/vfio/{mdevGroup}");
            Setup(host, container, group, r, "mdev-only");
            Report(host, container, r, "mdev-only");
        }
    }

    private static void Setup(VfioHost host, SafeFd container, SafeFd group, ConformanceRecorder r, string who)
    {
        r.Result($"{who}: VFIO_GROUP_SET_CONTAINER", Type1Calls.SetContainer(host, group, container));
        r.Result($"{who}: VFIO_SET_IOMMU(TYPE1v2)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
    }

    /// <summary>The lab's two calls: argsz = sizeof(info) to learn the size, then that size, then the chain.</summary>
    private static void Report(VfioHost host, SafeFd container, ConformanceRecorder r, string who)
    {
        int rc = Type1Calls.GetInfo(host, container, 24, out var first);
        r.Result($"{who}: VFIO_IOMMU_GET_INFO(argsz=24)", rc);
        if (rc < 0) return;
        r.Record($"{who}: first call", Head(first, withCapOffset: true));

        uint argsz = StructBytes.Read<vfio_iommu_type1_info>(first).argsz;
        rc = Type1Calls.GetInfo(host, container, argsz, out var info);
        r.Result($"{who}: VFIO_IOMMU_GET_INFO(argsz=needed)", rc);
        if (rc < 0) return;
        r.Record($"{who}: second call", Head(info, withCapOffset: true));

        var seen = new HashSet<ushort>();
        uint at = StructBytes.Read<vfio_iommu_type1_info>(info).cap_offset;
        for (int guard = 0; at != 0 && guard < 16 && at + 8 <= info.Length; guard++)
        {
            var header = StructBytes.Read<vfio_info_cap_header>(info, (int)at);
            seen.Add(header.id);
            r.Record($"{who}: cap @{at}", string.Create(CultureInfo.InvariantCulture, $"id {header.id} version {header.version} next {header.next}"));
            switch (header.id)
            {
                case VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION:
                    var mig = StructBytes.Read<vfio_iommu_type1_info_cap_migration>(info, (int)at);
                    r.Record($"{who}: MIGRATION", string.Create(CultureInfo.InvariantCulture,
                        $"flags 0x{mig.flags:x} pgsize_bitmap 0x{mig.pgsize_bitmap:x} max_dirty_bitmap_size {mig.max_dirty_bitmap_size}"));
                    break;
                case VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
                    r.Record($"{who}: DMA_AVAIL", "avail " + StructBytes.Read<vfio_iommu_type1_info_dma_avail>(info, (int)at).avail.ToString(CultureInfo.InvariantCulture));
                    break;
                case VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
                    r.Record($"{who}: IOVA_RANGE", Ranges(info, (int)at));
                    break;
            }
            at = header.next;
        }
        if (!seen.Contains(VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)) r.Record($"{who}: IOVA_RANGE", "absent");
    }

    private static string Head(byte[] buffer, bool withCapOffset)
    {
        var i = StructBytes.Read<vfio_iommu_type1_info>(buffer);
        string text = string.Create(CultureInfo.InvariantCulture, $"argsz {i.argsz} flags 0x{i.flags:x} iova_pgsizes 0x{i.iova_pgsizes:x}");
        return withCapOffset ? text + string.Create(CultureInfo.InvariantCulture, $" cap_offset {i.cap_offset}") : text;
    }

    private static string Ranges(byte[] info, int at)
    {
        var cap = StructBytes.Read<vfio_iommu_type1_info_cap_iova_range>(info, at);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"nr_iovas {cap.nr_iovas}"));
        int size = StructBytes.SizeOf<vfio_iova_range>();
        for (int k = 0; k < cap.nr_iovas && at + 16 + (k + 1) * size <= info.Length; k++)
        {
            var range = StructBytes.Read<vfio_iova_range>(info, at + 16 + k * size);
            text.Append(CultureInfo.InvariantCulture, $" [0x{range.start:x}-0x{range.end:x}]");
        }
        return text.ToString();
    }

    private static string FindAvail(byte[] info)
    {
        uint at = StructBytes.Read<vfio_iommu_type1_info>(info).cap_offset;
        for (int guard = 0; at != 0 && guard < 16 && at + 8 <= info.Length; guard++)
        {
            var header = StructBytes.Read<vfio_info_cap_header>(info, (int)at);
            if (header.id == VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
                return "avail " + StructBytes.Read<vfio_iommu_type1_info_dma_avail>(info, (int)at).avail.ToString(CultureInfo.InvariantCulture);
            at = header.next;
        }
        return "no DMA_AVAIL capability";
    }
}
