using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>VFIO_IOMMU_GET_INFO with its capability chain, as a <see cref="VfioIommuInfo"/>.</summary>
internal static class IommuInfoReader
{
    public static VfioIommuInfo Read(VfioHost host, SafeFd container, int containerId)
    {
        var answer = InfoQuery.IommuInfo(host, container);
        var caps = answer.Capabilities;
        var migration = caps.Migration;
        ulong pgsizes = answer.Info.iova_pgsizes;
        return new VfioIommuInfo
        {
            ContainerId = containerId,
            IovaPageSizes = pgsizes,
            IovaRanges = (caps.IovaRanges ?? System.Array.Empty<vfio_iova_range>())
                .Select(r => new IovaRange { Start = r.start, End = r.end }).ToArray(),
            DirtyTracking = migration is not null,
            // The migration capability names the page size of bitmaps (type1: the smallest IOMMU page only).
            DirtyPageSize = migration is { } m && m.pgsize_bitmap != 0 ? m.pgsize_bitmap & (~m.pgsize_bitmap + 1) : 4096,
            MaxDirtyBitmapSize = migration?.max_dirty_bitmap_size ?? 0,
            DmaMappingsAvailable = caps.DmaAvail,
            InfoSize = answer.Info.argsz,
            HostKind = host.Kind,
        };
    }
}
