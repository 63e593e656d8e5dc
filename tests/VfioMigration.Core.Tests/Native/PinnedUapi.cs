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

    public static IEnumerable<PinnedValue> All => Ioctls.Concat(Constants).Concat(Layouts);

    public static PinnedValue? Find(string key) => All.FirstOrDefault(p => p.Key == key);
}
