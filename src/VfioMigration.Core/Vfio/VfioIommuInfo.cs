using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Vfio;

/// <summary>A usable IOVA range; <see cref="End"/> is inclusive, as the kernel reports it.</summary>
public sealed class IovaRange
{
    public required Iova Start { get; init; }

    public required Iova End { get; init; }

    /// <summary>Bytes in the range.</summary>
    public ulong Size => End.Value - Start.Value + 1;

    public override string ToString() => $"{Start}-{End}";
}

/// <summary>What VFIO_IOMMU_GET_INFO says about a container's IOMMU.</summary>
public sealed class VfioIommuInfo
{
    /// <summary>The container's id in this session.</summary>
    public required int ContainerId { get; init; }

    /// <summary>Bitmap of the IOMMU's page sizes (iova_pgsizes).</summary>
    public required ulong IovaPageSizes { get; init; }

    /// <summary>The page sizes, readable: 4KiB, 2MiB, 1GiB.</summary>
    public IReadOnlyList<string> PageSizes => Enumerable.Range(0, 64).Where(b => (IovaPageSizes & (1UL << b)) != 0).Take(8)
        .Select(b => Readable.Bytes(1UL << b)).Concat(PopCount(IovaPageSizes) > 8 ? new[] { "..." } : System.Array.Empty<string>()).ToArray();

    /// <summary>The smallest IOMMU page: alignment of every mapping.</summary>
    public ulong MinimumPageSize => IovaPageSizes == 0 ? 4096 : IovaPageSizes & (~IovaPageSizes + 1);

    /// <summary>The usable IOVA ranges (none when the kernel reports no IOVA-range capability, as for an mdev-only container).</summary>
    public required IReadOnlyList<IovaRange> IovaRanges { get; init; }

    /// <summary>True if the migration capability is present: the container supports type1 dirty tracking.</summary>
    public required bool DirtyTracking { get; init; }

    /// <summary>Page size of dirty bitmaps (the smallest IOMMU page), from the migration capability.</summary>
    public required ulong DirtyPageSize { get; init; }

    /// <summary>Most bitmap bytes one GET_BITMAP call returns (256 MiB on Linux).</summary>
    public required ulong MaxDirtyBitmapSize { get; init; }

    /// <summary>DMA mappings the container can still take (the DMA_AVAIL capability), or null where the kernel does not report it.</summary>
    public required uint? DmaMappingsAvailable { get; init; }

    /// <summary>The buffer size the kernel asked for (argsz) to return every capability.</summary>
    public required uint InfoSize { get; init; }

    public required HostKind HostKind { get; init; }

    /// <summary>The kernel interface the container is built on.</summary>
    public VfioBackend Backend { get; init; } = VfioBackend.Legacy;

    /// <summary>iommufd: the IOMMU behind each bound physical device (IOMMU_GET_HW_INFO, decoded).</summary>
    public IReadOnlyList<IommuHardwareInfo> Hardware { get; init; } = System.Array.Empty<IommuHardwareInfo>();

    /// <summary>iommufd: the IOAS of the container.</summary>
    public uint IoasId { get; init; }

    /// <summary>iommufd: the HWPT its physical devices are attached to.</summary>
    public uint HwptId { get; init; }

    private static int PopCount(ulong v) => System.Numerics.BitOperations.PopCount(v);
}

/// <summary>Byte counts as a person reads them (binary units: 4KiB, 2MiB, 1.5GiB).</summary>
public static class Readable
{
    private static readonly string[] s_units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

    public static string Bytes(ulong bytes)
    {
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < s_units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return v.ToString(v == System.Math.Floor(v) ? "0" : "0.##", System.Globalization.CultureInfo.InvariantCulture) + s_units[u];
    }
}

/// <summary>The IOMMU types a container can be set to (VFIO_SET_IOMMU).</summary>
public enum VfioIommuType : uint
{
    /// <summary>VFIO_TYPE1_IOMMU: the original type1 (no dirty tracking).</summary>
    Type1 = 1,

    /// <summary>VFIO_TYPE1v2_IOMMU: type1 with unmap-by-range semantics; dirty tracking needs it.</summary>
    Type1v2 = 3,
}
