using System.Collections.Generic;
using System.Linq;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// A literal value of the kernel's UAPI, transcribed from docs/kernel-interface.md (section in
/// <see cref="Source"/>). <see cref="Key"/> uses <see cref="HeaderItem.Key"/>'s form. For a field,
/// <see cref="Value"/> is its offset and <see cref="Size"/> its width.
/// </summary>
public sealed record PinnedValue(string Key, long Value, string Source, int Size = 0)
{
    public override string ToString() => $"{Key} = {Value} ({Source})";
}

/// <summary>
/// The values the installed 6.1 header cannot confirm, pinned to the UAPI as documented, plus every ioctl
/// number as a literal (as rust-vmm's vfio-bindings test does). <see cref="HeaderLayoutTests"/> requires
/// that every item the header lacks appears here, so nothing in Native/ goes unchecked.
/// </summary>
public static class PinnedUapi
{
    /// <summary>Every ioctl request number: <c>_IO(';', 100 + n)</c> = 0x3B00 | (100 + n) (kernel-interface.md a.2, b.3).</summary>
    public static readonly IReadOnlyList<PinnedValue> Ioctls = new PinnedValue[]
    {
        new("ioctl:VFIO_GET_API_VERSION", 0x3B64, "kernel-interface.md a.2"),
        new("ioctl:VFIO_CHECK_EXTENSION", 0x3B65, "kernel-interface.md a.2"),
        new("ioctl:VFIO_SET_IOMMU", 0x3B66, "kernel-interface.md a.2"),
        new("ioctl:VFIO_GROUP_GET_STATUS", 0x3B67, "kernel-interface.md a.2"),
        new("ioctl:VFIO_GROUP_SET_CONTAINER", 0x3B68, "kernel-interface.md a.2"),
        new("ioctl:VFIO_GROUP_UNSET_CONTAINER", 0x3B69, "kernel-interface.md a.2"),
        new("ioctl:VFIO_GROUP_GET_DEVICE_FD", 0x3B6A, "kernel-interface.md a.2"),
        new("ioctl:VFIO_DEVICE_GET_INFO", 0x3B6B, "kernel-interface.md a.2"),
        new("ioctl:VFIO_DEVICE_GET_REGION_INFO", 0x3B6C, "kernel-interface.md a.2"),
        new("ioctl:VFIO_DEVICE_GET_IRQ_INFO", 0x3B6D, "kernel-interface.md a.2"),
        new("ioctl:VFIO_DEVICE_SET_IRQS", 0x3B6E, "kernel-interface.md a.2"),
        new("ioctl:VFIO_DEVICE_RESET", 0x3B6F, "kernel-interface.md a.2"),
        new("ioctl:VFIO_IOMMU_GET_INFO", 0x3B70, "kernel-interface.md a.2"),
        new("ioctl:VFIO_IOMMU_MAP_DMA", 0x3B71, "kernel-interface.md a.2"),
        new("ioctl:VFIO_IOMMU_UNMAP_DMA", 0x3B72, "kernel-interface.md a.2"),
        new("ioctl:VFIO_IOMMU_DIRTY_PAGES", 0x3B75, "kernel-interface.md a.2"),
        new("ioctl:VFIO_DEVICE_FEATURE", 0x3B75, "kernel-interface.md a.2, b.1"),
        new("ioctl:VFIO_MIG_GET_PRECOPY_INFO", 0x3B79, "kernel-interface.md a.2, b.3"),
        new("ioctl:VFIO_DEVICE_BIND_IOMMUFD", 0x3B76, Cdev),
        new("ioctl:VFIO_DEVICE_ATTACH_IOMMUFD_PT", 0x3B77, Cdev),
        new("ioctl:VFIO_DEVICE_DETACH_IOMMUFD_PT", 0x3B78, Cdev),
        new("ioctl:IOMMU_DESTROY", 0x3B80, Uapi),
        new("ioctl:IOMMU_IOAS_ALLOC", 0x3B81, Uapi),
        new("ioctl:IOMMU_IOAS_IOVA_RANGES", 0x3B84, Uapi),
        new("ioctl:IOMMU_IOAS_MAP", 0x3B85, Uapi),
        new("ioctl:IOMMU_IOAS_UNMAP", 0x3B86, Uapi),
        new("ioctl:IOMMU_HWPT_ALLOC", 0x3B89, Uapi),
        new("ioctl:IOMMU_GET_HW_INFO", 0x3B8A, Uapi),
        new("ioctl:IOMMU_HWPT_SET_DIRTY_TRACKING", 0x3B8B, Uapi),
        new("ioctl:IOMMU_HWPT_GET_DIRTY_BITMAP", 0x3B8C, Uapi),
    };

    /// <summary>Where the iommufd pins come from: include/uapi/linux/iommufd.h of 6.12 (uapi.md b.6, docs/iommufd.md).</summary>
    public const string Uapi = "iommufd.md: linux/iommufd.h 6.12";

    /// <summary>The vfio cdev additions of include/uapi/linux/vfio.h (6.6; 6.12 layouts).</summary>
    public const string Cdev = "iommufd.md: linux/vfio.h 6.12 cdev";

    /// <summary>
    /// Everything of linux/iommufd.h and of the vfio cdev except the ioctl numbers (in <see cref="Ioctls"/>):
    /// the 6.1 headers have none of it, so each value is pinned here, transcribed from the 6.12 header.
    /// </summary>
    public static readonly IReadOnlyList<PinnedValue> Iommufd = new PinnedValue[]
    {
        new("const:IOMMUFD_TYPE", 0x3B, Uapi),
        new("const:IOMMUFD_CMD_BASE", 0x80, Uapi),
        new("const:IOMMUFD_CMD_DESTROY", 0x80, Uapi),
        new("const:IOMMUFD_CMD_IOAS_ALLOC", 0x81, Uapi),
        new("const:IOMMUFD_CMD_IOAS_ALLOW_IOVAS", 0x82, Uapi),
        new("const:IOMMUFD_CMD_IOAS_COPY", 0x83, Uapi),
        new("const:IOMMUFD_CMD_IOAS_IOVA_RANGES", 0x84, Uapi),
        new("const:IOMMUFD_CMD_IOAS_MAP", 0x85, Uapi),
        new("const:IOMMUFD_CMD_IOAS_UNMAP", 0x86, Uapi),
        new("const:IOMMUFD_CMD_OPTION", 0x87, Uapi),
        new("const:IOMMUFD_CMD_VFIO_IOAS", 0x88, Uapi),
        new("const:IOMMUFD_CMD_HWPT_ALLOC", 0x89, Uapi),
        new("const:IOMMUFD_CMD_GET_HW_INFO", 0x8A, Uapi),
        new("const:IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING", 0x8B, Uapi),
        new("const:IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP", 0x8C, Uapi),
        new("const:IOMMU_IOAS_MAP_FIXED_IOVA", 1, Uapi),
        new("const:IOMMU_IOAS_MAP_WRITEABLE", 2, Uapi),
        new("const:IOMMU_IOAS_MAP_READABLE", 4, Uapi),
        new("const:IOMMU_HWPT_ALLOC_NEST_PARENT", 1, Uapi),
        new("const:IOMMU_HWPT_ALLOC_DIRTY_TRACKING", 2, Uapi),
        new("const:IOMMU_HWPT_FAULT_ID_VALID", 4, Uapi),
        new("const:IOMMU_HWPT_DATA_NONE", 0, Uapi),
        new("const:IOMMU_HW_INFO_TYPE_NONE", 0, Uapi),
        new("const:IOMMU_HW_INFO_TYPE_INTEL_VTD", 1, Uapi),
        new("const:IOMMU_HW_INFO_TYPE_ARM_SMMUV3", 2, Uapi),
        new("const:IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17", 1, Uapi),
        new("const:IOMMU_HW_CAP_DIRTY_TRACKING", 1, Uapi),
        new("const:IOMMU_HWPT_DIRTY_TRACKING_ENABLE", 1, Uapi),
        new("const:IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR", 1, Uapi),

        new("struct:iommu_destroy", 8, Uapi),
        new("field:iommu_destroy.size", 0, Uapi, 4),
        new("field:iommu_destroy.id", 4, Uapi, 4),
        new("struct:iommu_ioas_alloc", 12, Uapi),
        new("field:iommu_ioas_alloc.size", 0, Uapi, 4),
        new("field:iommu_ioas_alloc.flags", 4, Uapi, 4),
        new("field:iommu_ioas_alloc.out_ioas_id", 8, Uapi, 4),
        new("struct:iommu_iova_range", 16, Uapi),
        new("field:iommu_iova_range.start", 0, Uapi, 8),
        new("field:iommu_iova_range.last", 8, Uapi, 8),
        new("struct:iommu_ioas_iova_ranges", 32, Uapi),
        new("field:iommu_ioas_iova_ranges.size", 0, Uapi, 4),
        new("field:iommu_ioas_iova_ranges.ioas_id", 4, Uapi, 4),
        new("field:iommu_ioas_iova_ranges.num_iovas", 8, Uapi, 4),
        new("field:iommu_ioas_iova_ranges.__reserved", 12, Uapi, 4),
        new("field:iommu_ioas_iova_ranges.allowed_iovas", 16, Uapi, 8),
        new("field:iommu_ioas_iova_ranges.out_iova_alignment", 24, Uapi, 8),
        new("struct:iommu_ioas_map", 40, Uapi),
        new("field:iommu_ioas_map.size", 0, Uapi, 4),
        new("field:iommu_ioas_map.flags", 4, Uapi, 4),
        new("field:iommu_ioas_map.ioas_id", 8, Uapi, 4),
        new("field:iommu_ioas_map.__reserved", 12, Uapi, 4),
        new("field:iommu_ioas_map.user_va", 16, Uapi, 8),
        new("field:iommu_ioas_map.length", 24, Uapi, 8),
        new("field:iommu_ioas_map.iova", 32, Uapi, 8),
        new("struct:iommu_ioas_unmap", 24, Uapi),
        new("field:iommu_ioas_unmap.size", 0, Uapi, 4),
        new("field:iommu_ioas_unmap.ioas_id", 4, Uapi, 4),
        new("field:iommu_ioas_unmap.iova", 8, Uapi, 8),
        new("field:iommu_ioas_unmap.length", 16, Uapi, 8),
        new("struct:iommu_hwpt_alloc", 48, Uapi),
        new("field:iommu_hwpt_alloc.size", 0, Uapi, 4),
        new("field:iommu_hwpt_alloc.flags", 4, Uapi, 4),
        new("field:iommu_hwpt_alloc.dev_id", 8, Uapi, 4),
        new("field:iommu_hwpt_alloc.pt_id", 12, Uapi, 4),
        new("field:iommu_hwpt_alloc.out_hwpt_id", 16, Uapi, 4),
        new("field:iommu_hwpt_alloc.__reserved", 20, Uapi, 4),
        new("field:iommu_hwpt_alloc.data_type", 24, Uapi, 4),
        new("field:iommu_hwpt_alloc.data_len", 28, Uapi, 4),
        new("field:iommu_hwpt_alloc.data_uptr", 32, Uapi, 8),
        new("field:iommu_hwpt_alloc.fault_id", 40, Uapi, 4),
        new("field:iommu_hwpt_alloc.__reserved2", 44, Uapi, 4),
        new("struct:iommu_hw_info_vtd", 24, Uapi),
        new("field:iommu_hw_info_vtd.flags", 0, Uapi, 4),
        new("field:iommu_hw_info_vtd.__reserved", 4, Uapi, 4),
        new("field:iommu_hw_info_vtd.cap_reg", 8, Uapi, 8),
        new("field:iommu_hw_info_vtd.ecap_reg", 16, Uapi, 8),
        new("struct:iommu_hw_info", 40, Uapi),
        new("field:iommu_hw_info.size", 0, Uapi, 4),
        new("field:iommu_hw_info.flags", 4, Uapi, 4),
        new("field:iommu_hw_info.dev_id", 8, Uapi, 4),
        new("field:iommu_hw_info.data_len", 12, Uapi, 4),
        new("field:iommu_hw_info.data_uptr", 16, Uapi, 8),
        new("field:iommu_hw_info.out_data_type", 24, Uapi, 4),
        new("field:iommu_hw_info.__reserved", 28, Uapi, 4),
        new("field:iommu_hw_info.out_capabilities", 32, Uapi, 8),
        new("struct:iommu_hwpt_set_dirty_tracking", 16, Uapi),
        new("field:iommu_hwpt_set_dirty_tracking.size", 0, Uapi, 4),
        new("field:iommu_hwpt_set_dirty_tracking.flags", 4, Uapi, 4),
        new("field:iommu_hwpt_set_dirty_tracking.hwpt_id", 8, Uapi, 4),
        new("field:iommu_hwpt_set_dirty_tracking.__reserved", 12, Uapi, 4),
        new("struct:iommu_hwpt_get_dirty_bitmap", 48, Uapi),
        new("field:iommu_hwpt_get_dirty_bitmap.size", 0, Uapi, 4),
        new("field:iommu_hwpt_get_dirty_bitmap.hwpt_id", 4, Uapi, 4),
        new("field:iommu_hwpt_get_dirty_bitmap.flags", 8, Uapi, 4),
        new("field:iommu_hwpt_get_dirty_bitmap.__reserved", 12, Uapi, 4),
        new("field:iommu_hwpt_get_dirty_bitmap.iova", 16, Uapi, 8),
        new("field:iommu_hwpt_get_dirty_bitmap.length", 24, Uapi, 8),
        new("field:iommu_hwpt_get_dirty_bitmap.page_size", 32, Uapi, 8),
        new("field:iommu_hwpt_get_dirty_bitmap.data", 40, Uapi, 8),

        new("struct:vfio_device_bind_iommufd", 16, Cdev),
        new("field:vfio_device_bind_iommufd.argsz", 0, Cdev, 4),
        new("field:vfio_device_bind_iommufd.flags", 4, Cdev, 4),
        new("field:vfio_device_bind_iommufd.iommufd", 8, Cdev, 4),
        new("field:vfio_device_bind_iommufd.out_devid", 12, Cdev, 4),
        new("struct:vfio_device_attach_iommufd_pt", 12, Cdev),
        new("field:vfio_device_attach_iommufd_pt.argsz", 0, Cdev, 4),
        new("field:vfio_device_attach_iommufd_pt.flags", 4, Cdev, 4),
        new("field:vfio_device_attach_iommufd_pt.pt_id", 8, Cdev, 4),
        new("struct:vfio_device_detach_iommufd_pt", 8, Cdev),
        new("field:vfio_device_detach_iommufd_pt.argsz", 0, Cdev, 4),
        new("field:vfio_device_detach_iommufd_pt.flags", 4, Cdev, 4),
    };

    /// <summary>Constants the 6.1 header does not define: 6.2 additions, the 5.8 names, and kernel-internal limits.</summary>
    public static readonly IReadOnlyList<PinnedValue> Constants = new PinnedValue[]
    {
        new("const:VFIO_MIGRATION_PRE_COPY", 4, "kernel-interface.md b.2"),
        new("const:VFIO_DEVICE_STATE_PRE_COPY", 6, "kernel-interface.md b.2"),
        new("const:VFIO_DEVICE_STATE_PRE_COPY_P2P", 7, "kernel-interface.md b.2"),
        new("const:VFIO_DEVICE_STATE_NR", 8, "kernel-interface.md b.2"),
        new("const:VFIO_DEVICE_FEATURE_MIG_DATA_SIZE", 9, "kernel-interface.md b.1, b.3"),
        new("const:VFIO_REGION_TYPE_MIGRATION", 3, "kernel-interface.md a.4"),
        new("const:VFIO_REGION_SUBTYPE_MIGRATION", 1, "kernel-interface.md a.4"),
        new("const:DIRTY_BITMAP_PAGES_MAX", 2147483647, "kernel-interface.md c.1"),
        new("const:DIRTY_BITMAP_SIZE_MAX", 268435456, "kernel-interface.md c.1"),
        new("const:DMA_ENTRY_LIMIT", 65535, "kernel-interface.md c.1"),
        new("const:LOG_MAX_RANGES", 256, "kernel-interface.md b.4"),
    };

    /// <summary>Structs and members the 6.1 header does not have.</summary>
    public static readonly IReadOnlyList<PinnedValue> Layouts = new PinnedValue[]
    {
        new("struct:vfio_precopy_info", 24, "kernel-interface.md b.3"),
        new("field:vfio_precopy_info.argsz", 0, "kernel-interface.md b.3", 4),
        new("field:vfio_precopy_info.flags", 4, "kernel-interface.md b.3", 4),
        new("field:vfio_precopy_info.initial_bytes", 8, "kernel-interface.md b.3", 8),
        new("field:vfio_precopy_info.dirty_bytes", 16, "kernel-interface.md b.3", 8),
        new("struct:vfio_device_feature_mig_data_size", 8, "kernel-interface.md b.3"),
        new("field:vfio_device_feature_mig_data_size.stop_copy_length", 0, "kernel-interface.md b.3", 8),
        new("field:vfio_iommu_type1_info.pad", 20, "kernel-interface.md a.3", 4),
    };

    public static IEnumerable<PinnedValue> All => Ioctls.Concat(Constants).Concat(Layouts).Concat(Iommufd);

    public static PinnedValue? Find(string key) => All.FirstOrDefault(p => p.Key == key);
}
