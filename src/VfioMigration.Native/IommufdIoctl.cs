namespace VfioMigration.Core.Native;

/// <summary>
/// Request numbers of linux/iommufd.h (6.12), C names verbatim: <c>_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + n)</c>
/// on a /dev/iommu descriptor. The type is ';' like VFIO's, the numbers start at 0x80. The 6.1 UAPI headers
/// the project builds with have no iommufd.h: the layout tests pin each number to its literal.
/// </summary>
public static class IommufdIoctl
{
    public const uint IOMMUFD_TYPE = ';';
    public const uint IOMMUFD_CMD_BASE = 0x80;

    // enum { IOMMUFD_CMD_BASE = 0x80, IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE, ... } in the header's order.
    public const uint IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
    public const uint IOMMUFD_CMD_IOAS_ALLOC = 0x81;
    public const uint IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
    public const uint IOMMUFD_CMD_IOAS_COPY = 0x83;
    public const uint IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
    public const uint IOMMUFD_CMD_IOAS_MAP = 0x85;
    public const uint IOMMUFD_CMD_IOAS_UNMAP = 0x86;
    public const uint IOMMUFD_CMD_OPTION = 0x87;
    public const uint IOMMUFD_CMD_VFIO_IOAS = 0x88;
    public const uint IOMMUFD_CMD_HWPT_ALLOC = 0x89;
    public const uint IOMMUFD_CMD_GET_HW_INFO = 0x8a;
    public const uint IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
    public const uint IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;

    private static IoctlRequest Io(string name, uint nr) => new(name, (IOMMUFD_TYPE << 8) | nr);

    public static readonly IoctlRequest IOMMU_DESTROY = Io(nameof(IOMMU_DESTROY), IOMMUFD_CMD_DESTROY);
    public static readonly IoctlRequest IOMMU_IOAS_ALLOC = Io(nameof(IOMMU_IOAS_ALLOC), IOMMUFD_CMD_IOAS_ALLOC);
    public static readonly IoctlRequest IOMMU_IOAS_IOVA_RANGES = Io(nameof(IOMMU_IOAS_IOVA_RANGES), IOMMUFD_CMD_IOAS_IOVA_RANGES);
    public static readonly IoctlRequest IOMMU_IOAS_MAP = Io(nameof(IOMMU_IOAS_MAP), IOMMUFD_CMD_IOAS_MAP);
    public static readonly IoctlRequest IOMMU_IOAS_UNMAP = Io(nameof(IOMMU_IOAS_UNMAP), IOMMUFD_CMD_IOAS_UNMAP);
    public static readonly IoctlRequest IOMMU_HWPT_ALLOC = Io(nameof(IOMMU_HWPT_ALLOC), IOMMUFD_CMD_HWPT_ALLOC);
    public static readonly IoctlRequest IOMMU_GET_HW_INFO = Io(nameof(IOMMU_GET_HW_INFO), IOMMUFD_CMD_GET_HW_INFO);
    public static readonly IoctlRequest IOMMU_HWPT_SET_DIRTY_TRACKING = Io(nameof(IOMMU_HWPT_SET_DIRTY_TRACKING), IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);
    public static readonly IoctlRequest IOMMU_HWPT_GET_DIRTY_BITMAP = Io(nameof(IOMMU_HWPT_GET_DIRTY_BITMAP), IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);

    /// <summary>Every request above, for tests and traces.</summary>
    public static IoctlRequest[] All { get; } =
    {
        IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP, IOMMU_IOAS_UNMAP,
        IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO, IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP,
    };
}
