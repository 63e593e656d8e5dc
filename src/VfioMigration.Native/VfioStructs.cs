using System.Runtime.InteropServices;

namespace VfioMigration.Core.Native;

// Blittable mirrors of the structures of linux/vfio.h (LP64, little-endian), C names kept verbatim.
// Each has an explicit size and explicit offsets; a test compiles a C program against the system's
// <linux/vfio.h> and compares every size and offset. Variable-length tails (capability chains, bitmaps,
// arrays) are not part of the mirrors: they follow the fixed part in the same byte buffer.
// Pointers the kernel dereferences (bitmap.data, ranges, vaddr) are plain u64 user addresses.

#pragma warning disable IDE1006 // C names

/// <summary>Header of every capability in an info chain; <c>next</c> is an offset from the start of the whole buffer.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_info_cap_header
{
    [FieldOffset(0)] public ushort id;
    [FieldOffset(2)] public ushort version;
    [FieldOffset(4)] public uint next;
}

/// <summary>VFIO_GROUP_GET_STATUS.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_group_status
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
}

/// <summary>VFIO_DEVICE_GET_INFO (20 bytes up to cap_offset, as in the 6.1 header; later headers add a u32 pad).</summary>
[StructLayout(LayoutKind.Explicit, Size = 20)]
public struct vfio_device_info
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint num_regions;
    [FieldOffset(12)] public uint num_irqs;
    [FieldOffset(16)] public uint cap_offset;
}

/// <summary>VFIO_DEVICE_GET_REGION_INFO.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct vfio_region_info
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint index;
    [FieldOffset(12)] public uint cap_offset;
    [FieldOffset(16)] public ulong size;
    [FieldOffset(24)] public ulong offset;
}

/// <summary>One area of a sparse-mmap capability.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_region_sparse_mmap_area
{
    [FieldOffset(0)] public ulong offset;
    [FieldOffset(8)] public ulong size;
}

/// <summary>Region capability VFIO_REGION_INFO_CAP_SPARSE_MMAP (id 1); <c>areas[nr_areas]</c> follow at 16.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_region_info_cap_sparse_mmap
{
    [FieldOffset(0)] public vfio_info_cap_header header;
    [FieldOffset(8)] public uint nr_areas;
    [FieldOffset(12)] public uint reserved;
}

/// <summary>Region capability VFIO_REGION_INFO_CAP_TYPE (id 2).</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_region_info_cap_type
{
    [FieldOffset(0)] public vfio_info_cap_header header;
    [FieldOffset(8)] public uint type;
    [FieldOffset(12)] public uint subtype;
}

/// <summary>VFIO_DEVICE_GET_IRQ_INFO.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_irq_info
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint index;
    [FieldOffset(12)] public uint count;
}

/// <summary>VFIO_IOMMU_GET_INFO (type1). The capability chain, if any, starts at <c>cap_offset</c> (24).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct vfio_iommu_type1_info
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public ulong iova_pgsizes;
    [FieldOffset(16)] public uint cap_offset;
    [FieldOffset(20)] public uint pad;
}

/// <summary>One IOVA range; <c>end</c> is inclusive.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_iova_range
{
    [FieldOffset(0)] public ulong start;
    [FieldOffset(8)] public ulong end;
}

/// <summary>Type1 capability VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE (id 1); <c>iova_ranges[nr_iovas]</c> follow at 16.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_iommu_type1_info_cap_iova_range
{
    [FieldOffset(0)] public vfio_info_cap_header header;
    [FieldOffset(8)] public uint nr_iovas;
    [FieldOffset(12)] public uint reserved;
}

/// <summary>Type1 capability VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION (id 2), the 5.8 series' dirty-tracking limits.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct vfio_iommu_type1_info_cap_migration
{
    [FieldOffset(0)] public vfio_info_cap_header header;
    [FieldOffset(8)] public uint flags;
    [FieldOffset(16)] public ulong pgsize_bitmap;
    [FieldOffset(24)] public ulong max_dirty_bitmap_size;
}

/// <summary>Type1 capability VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL (id 3).</summary>
[StructLayout(LayoutKind.Explicit, Size = 12)]
public struct vfio_iommu_type1_info_dma_avail
{
    [FieldOffset(0)] public vfio_info_cap_header header;
    [FieldOffset(8)] public uint avail;
}

/// <summary>VFIO_IOMMU_MAP_DMA.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct vfio_iommu_type1_dma_map
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public ulong vaddr;
    [FieldOffset(16)] public ulong iova;
    [FieldOffset(24)] public ulong size;
}

/// <summary>A user bitmap: one bit per <c>pgsize</c> page, <c>size</c> bytes at user address <c>data</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct vfio_bitmap
{
    [FieldOffset(0)] public ulong pgsize;
    [FieldOffset(8)] public ulong size;
    [FieldOffset(16)] public ulong data;
}

/// <summary>VFIO_IOMMU_UNMAP_DMA; with GET_DIRTY_BITMAP a <see cref="vfio_bitmap"/> follows at 24 (argsz 48).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct vfio_iommu_type1_dma_unmap
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public ulong iova;
    [FieldOffset(16)] public ulong size;
}

/// <summary>VFIO_IOMMU_DIRTY_PAGES; for GET_BITMAP a <see cref="vfio_iommu_type1_dirty_bitmap_get"/> follows at 8 (argsz 48).</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_iommu_type1_dirty_bitmap
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
}

/// <summary>The GET_BITMAP payload of VFIO_IOMMU_DIRTY_PAGES: bits are relative to <c>iova</c>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct vfio_iommu_type1_dirty_bitmap_get
{
    [FieldOffset(0)] public ulong iova;
    [FieldOffset(8)] public ulong size;
    [FieldOffset(16)] public vfio_bitmap bitmap;
}

/// <summary>VFIO_DEVICE_FEATURE header; the feature's payload follows at 8.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_device_feature
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
}

/// <summary>VFIO_DEVICE_FEATURE_MIGRATION (GET).</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_device_feature_migration
{
    [FieldOffset(0)] public ulong flags;
}

/// <summary>VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (GET/SET); <c>data_fd</c> is -1 unless the arc opened a data session.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_device_feature_mig_state
{
    [FieldOffset(0)] public uint device_state;
    [FieldOffset(4)] public int data_fd;
}

/// <summary>One range of VFIO_DEVICE_FEATURE_DMA_LOGGING_START.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_device_feature_dma_logging_range
{
    [FieldOffset(0)] public ulong iova;
    [FieldOffset(8)] public ulong length;
}

/// <summary>VFIO_DEVICE_FEATURE_DMA_LOGGING_START (SET); <c>ranges</c> is a user address of the range array.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct vfio_device_feature_dma_logging_control
{
    [FieldOffset(0)] public ulong page_size;
    [FieldOffset(8)] public uint num_ranges;
    [FieldOffset(12)] public uint __reserved;
    [FieldOffset(16)] public ulong ranges;
}

/// <summary>VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT (GET); <c>bitmap</c> is a user address of u64 words.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct vfio_device_feature_dma_logging_report
{
    [FieldOffset(0)] public ulong iova;
    [FieldOffset(8)] public ulong length;
    [FieldOffset(16)] public ulong page_size;
    [FieldOffset(24)] public ulong bitmap;
}

/// <summary>VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (GET, 6.2+).</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_device_feature_mig_data_size
{
    [FieldOffset(0)] public ulong stop_copy_length;
}

/// <summary>VFIO_MIG_GET_PRECOPY_INFO on a migration data fd (6.2+).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct vfio_precopy_info
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public ulong initial_bytes;
    [FieldOffset(16)] public ulong dirty_bytes;
}

/// <summary>
/// The v1 migration region's header (the 5.8 series), at offset 0 of the region of type 3 / subtype 1.
/// Fields are accessed with pread/pwrite at their natural width.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct vfio_device_migration_info
{
    [FieldOffset(0)] public uint device_state;
    [FieldOffset(4)] public uint reserved;
    [FieldOffset(8)] public ulong pending_bytes;
    [FieldOffset(16)] public ulong data_offset;
    [FieldOffset(24)] public ulong data_size;
}

/// <summary>VFIO_DEVICE_BIND_IOMMUFD on a device cdev (6.6+): binds the device to an iommufd; <c>out_devid</c> is its object id there.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct vfio_device_bind_iommufd
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public int iommufd;
    [FieldOffset(12)] public uint out_devid;
}

/// <summary>VFIO_DEVICE_ATTACH_IOMMUFD_PT (6.12 layout; 6.13 adds pasid): attach to an IOAS or a HWPT; <c>pt_id</c> returns the HWPT used.</summary>
[StructLayout(LayoutKind.Explicit, Size = 12)]
public struct vfio_device_attach_iommufd_pt
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint pt_id;
}

/// <summary>VFIO_DEVICE_DETACH_IOMMUFD_PT (6.12 layout).</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct vfio_device_detach_iommufd_pt
{
    [FieldOffset(0)] public uint argsz;
    [FieldOffset(4)] public uint flags;
}
