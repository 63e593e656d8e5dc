namespace VfioMigration.Core.Native;

/// <summary>
/// Constants of linux/iommufd.h (6.12), C names verbatim, plus the path of the device node. The 6.1 UAPI
/// headers have no iommufd.h: the layout tests pin each value (kernel-interface.md, docs/iommufd.md).
/// </summary>
public static class IommufdConstants
{
    // enum iommufd_ioas_map_flags
    public const uint IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
    public const uint IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
    public const uint IOMMU_IOAS_MAP_READABLE = 1 << 2;

    // enum iommufd_hwpt_alloc_flags (FAULT_ID_VALID since 6.11)
    public const uint IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
    public const uint IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
    public const uint IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;

    // enum iommu_hwpt_data_type (first entry)
    public const uint IOMMU_HWPT_DATA_NONE = 0;

    // enum iommu_hw_info_type
    public const uint IOMMU_HW_INFO_TYPE_NONE = 0;
    public const uint IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
    public const uint IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;

    // enum iommu_hw_info_vtd_flags
    public const uint IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

    // enum iommufd_hw_capabilities
    public const ulong IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;

    // enum iommufd_hwpt_set_dirty_tracking_flags
    public const uint IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

    // enum iommufd_hwpt_get_dirty_bitmap_flags
    public const uint IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

    /// <summary>The iommufd character device (misc 10:257).</summary>
    public const string IommuPath = "/dev/iommu";

    /// <summary>The folder of the vfio device cdevs (/dev/vfio/devices/vfioN, CONFIG_VFIO_DEVICE_CDEV).</summary>
    public const string DeviceCdevFolder = "/dev/vfio/devices";
}
