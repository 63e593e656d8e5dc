using System.Runtime.InteropServices;

namespace VfioMigration.Core.Native;

// Blittable mirrors of the structures of linux/iommufd.h (6.12, LP64, little-endian), C names verbatim.
// Every iommufd struct starts with __u32 size: the caller's sizeof; the kernel takes any size from its
// minimum up and requires bytes it does not know to be zero (E2BIG). The 6.1 headers lack them all: the
// layout tests pin sizes and offsets to literals (and compare them with <linux/iommufd.h> where installed).

#pragma warning disable IDE1006 // C names

/// <summary>IOMMU_DESTROY.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct iommu_destroy
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint id;
}

/// <summary>IOMMU_IOAS_ALLOC.</summary>
[StructLayout(LayoutKind.Explicit, Size = 12)]
public struct iommu_ioas_alloc
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint out_ioas_id;
}

/// <summary>One IOVA interval; <c>last</c> is inclusive.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct iommu_iova_range
{
    [FieldOffset(0)] public ulong start;
    [FieldOffset(8)] public ulong last;
}

/// <summary>IOMMU_IOAS_IOVA_RANGES; <c>allowed_iovas</c> points at <c>num_iovas</c> iommu_iova_range.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct iommu_ioas_iova_ranges
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint ioas_id;
    [FieldOffset(8)] public uint num_iovas;
    [FieldOffset(12)] public uint __reserved;
    [FieldOffset(16)] public ulong allowed_iovas;
    [FieldOffset(24)] public ulong out_iova_alignment;
}

/// <summary>IOMMU_IOAS_MAP.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct iommu_ioas_map
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint ioas_id;
    [FieldOffset(12)] public uint __reserved;
    [FieldOffset(16)] public ulong user_va;
    [FieldOffset(24)] public ulong length;
    [FieldOffset(32)] public ulong iova;
}

/// <summary>IOMMU_IOAS_UNMAP; <c>length</c> returns the bytes unmapped.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct iommu_ioas_unmap
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint ioas_id;
    [FieldOffset(8)] public ulong iova;
    [FieldOffset(16)] public ulong length;
}

/// <summary>IOMMU_HWPT_ALLOC (48 bytes since 6.11: fault_id and __reserved2; the kernel's minimum is 24, up to __reserved).</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
public struct iommu_hwpt_alloc
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint dev_id;
    [FieldOffset(12)] public uint pt_id;
    [FieldOffset(16)] public uint out_hwpt_id;
    [FieldOffset(20)] public uint __reserved;
    [FieldOffset(24)] public uint data_type;
    [FieldOffset(28)] public uint data_len;
    [FieldOffset(32)] public ulong data_uptr;
    [FieldOffset(40)] public uint fault_id;
    [FieldOffset(44)] public uint __reserved2;
}

/// <summary>The VT-d data of IOMMU_GET_HW_INFO (IOMMU_HW_INFO_TYPE_INTEL_VTD): the capability registers as read.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct iommu_hw_info_vtd
{
    [FieldOffset(0)] public uint flags;
    [FieldOffset(4)] public uint __reserved;
    [FieldOffset(8)] public ulong cap_reg;
    [FieldOffset(16)] public ulong ecap_reg;
}

/// <summary>IOMMU_GET_HW_INFO on a bound device's id.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct iommu_hw_info
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint dev_id;
    [FieldOffset(12)] public uint data_len;
    [FieldOffset(16)] public ulong data_uptr;
    [FieldOffset(24)] public uint out_data_type;
    [FieldOffset(28)] public uint __reserved;
    [FieldOffset(32)] public ulong out_capabilities;
}

/// <summary>IOMMU_HWPT_SET_DIRTY_TRACKING.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct iommu_hwpt_set_dirty_tracking
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint flags;
    [FieldOffset(8)] public uint hwpt_id;
    [FieldOffset(12)] public uint __reserved;
}

/// <summary>IOMMU_HWPT_GET_DIRTY_BITMAP; bit n of <c>data</c> is the page at iova + n * page_size.</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
public struct iommu_hwpt_get_dirty_bitmap
{
    [FieldOffset(0)] public uint size;
    [FieldOffset(4)] public uint hwpt_id;
    [FieldOffset(8)] public uint flags;
    [FieldOffset(12)] public uint __reserved;
    [FieldOffset(16)] public ulong iova;
    [FieldOffset(24)] public ulong length;
    [FieldOffset(32)] public ulong page_size;
    [FieldOffset(40)] public ulong data;
}
