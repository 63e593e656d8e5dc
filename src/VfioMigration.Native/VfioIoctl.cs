namespace VfioMigration.Core.Native;

/// <summary>An ioctl request number with the C name of its macro (numbers are shared between fd kinds).</summary>
public readonly record struct IoctlRequest(string Name, uint Number)
{
    public override string ToString() => $"{Name} (0x{Number:X4})";
}

/// <summary>
/// Request numbers of linux/vfio.h, C names verbatim. All are <c>_IO(VFIO_TYPE, VFIO_BASE + n)</c>:
/// no size or direction is encoded, so a number means different ioctls on different kinds of fd
/// (container, group, device, migration data fd). A test compares each with the system header.
/// </summary>
public static class VfioIoctl
{
    public const uint VFIO_TYPE = ';';
    public const uint VFIO_BASE = 100;
    public const int VFIO_API_VERSION = 0;

    private static IoctlRequest Io(string name, uint nr) => new(name, (VFIO_TYPE << 8) | (VFIO_BASE + nr));

    // container (/dev/vfio/vfio)
    public static readonly IoctlRequest VFIO_GET_API_VERSION = Io(nameof(VFIO_GET_API_VERSION), 0);
    public static readonly IoctlRequest VFIO_CHECK_EXTENSION = Io(nameof(VFIO_CHECK_EXTENSION), 1);
    public static readonly IoctlRequest VFIO_SET_IOMMU = Io(nameof(VFIO_SET_IOMMU), 2);

    // group (/dev/vfio/N)
    public static readonly IoctlRequest VFIO_GROUP_GET_STATUS = Io(nameof(VFIO_GROUP_GET_STATUS), 3);
    public static readonly IoctlRequest VFIO_GROUP_SET_CONTAINER = Io(nameof(VFIO_GROUP_SET_CONTAINER), 4);
    public static readonly IoctlRequest VFIO_GROUP_UNSET_CONTAINER = Io(nameof(VFIO_GROUP_UNSET_CONTAINER), 5);
    public static readonly IoctlRequest VFIO_GROUP_GET_DEVICE_FD = Io(nameof(VFIO_GROUP_GET_DEVICE_FD), 6);

    // device
    public static readonly IoctlRequest VFIO_DEVICE_GET_INFO = Io(nameof(VFIO_DEVICE_GET_INFO), 7);
    public static readonly IoctlRequest VFIO_DEVICE_GET_REGION_INFO = Io(nameof(VFIO_DEVICE_GET_REGION_INFO), 8);
    public static readonly IoctlRequest VFIO_DEVICE_GET_IRQ_INFO = Io(nameof(VFIO_DEVICE_GET_IRQ_INFO), 9);
    public static readonly IoctlRequest VFIO_DEVICE_SET_IRQS = Io(nameof(VFIO_DEVICE_SET_IRQS), 10);
    public static readonly IoctlRequest VFIO_DEVICE_RESET = Io(nameof(VFIO_DEVICE_RESET), 11);
    public static readonly IoctlRequest VFIO_DEVICE_FEATURE = Io(nameof(VFIO_DEVICE_FEATURE), 17);

    // device cdev (/dev/vfio/devices/vfioN, 6.6+; absent from the 6.1 header)
    public static readonly IoctlRequest VFIO_DEVICE_BIND_IOMMUFD = Io(nameof(VFIO_DEVICE_BIND_IOMMUFD), 18);
    public static readonly IoctlRequest VFIO_DEVICE_ATTACH_IOMMUFD_PT = Io(nameof(VFIO_DEVICE_ATTACH_IOMMUFD_PT), 19);
    public static readonly IoctlRequest VFIO_DEVICE_DETACH_IOMMUFD_PT = Io(nameof(VFIO_DEVICE_DETACH_IOMMUFD_PT), 20);

    // container, type1 IOMMU
    public static readonly IoctlRequest VFIO_IOMMU_GET_INFO = Io(nameof(VFIO_IOMMU_GET_INFO), 12);
    public static readonly IoctlRequest VFIO_IOMMU_MAP_DMA = Io(nameof(VFIO_IOMMU_MAP_DMA), 13);
    public static readonly IoctlRequest VFIO_IOMMU_UNMAP_DMA = Io(nameof(VFIO_IOMMU_UNMAP_DMA), 14);
    public static readonly IoctlRequest VFIO_IOMMU_DIRTY_PAGES = Io(nameof(VFIO_IOMMU_DIRTY_PAGES), 17);

    // migration data fd (6.2+; absent from the 6.1 header)
    public static readonly IoctlRequest VFIO_MIG_GET_PRECOPY_INFO = Io(nameof(VFIO_MIG_GET_PRECOPY_INFO), 21);

    /// <summary>Every request above, for tests and traces.</summary>
    public static IoctlRequest[] All { get; } =
    {
        VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU,
        VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER, VFIO_GROUP_GET_DEVICE_FD,
        VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS,
        VFIO_DEVICE_RESET, VFIO_DEVICE_FEATURE,
        VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT,
        VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_IOMMU_DIRTY_PAGES,
        VFIO_MIG_GET_PRECOPY_INFO,
    };
}
