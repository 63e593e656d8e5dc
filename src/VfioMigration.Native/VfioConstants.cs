namespace VfioMigration.Core.Native;

/// <summary>
/// Constants of linux/vfio.h, C names kept verbatim. Values the installed 6.1 header lacks (PRE_COPY,
/// MIG_DATA_SIZE, the 5.8 names of the v1 region) are pinned to the kernel's UAPI by a test.
/// </summary>
public static class VfioConstants
{
    // VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU
    public const uint VFIO_TYPE1_IOMMU = 1;
    public const uint VFIO_SPAPR_TCE_IOMMU = 2;
    public const uint VFIO_TYPE1v2_IOMMU = 3;
    public const uint VFIO_DMA_CC_IOMMU = 4;
    public const uint VFIO_EEH = 5;
    public const uint VFIO_TYPE1_NESTING_IOMMU = 6;
    public const uint VFIO_SPAPR_TCE_v2_IOMMU = 7;
    public const uint VFIO_NOIOMMU_IOMMU = 8;
    public const uint VFIO_UNMAP_ALL = 9;
    public const uint VFIO_UPDATE_VADDR = 10;

    // vfio_group_status.flags
    public const uint VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
    public const uint VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

    // vfio_device_info.flags
    public const uint VFIO_DEVICE_FLAGS_RESET = 1 << 0;
    public const uint VFIO_DEVICE_FLAGS_PCI = 1 << 1;
    public const uint VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
    public const uint VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
    public const uint VFIO_DEVICE_FLAGS_CCW = 1 << 4;
    public const uint VFIO_DEVICE_FLAGS_AP = 1 << 5;
    public const uint VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
    public const uint VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

    // vfio_region_info.flags and region capabilities
    public const uint VFIO_REGION_INFO_FLAG_READ = 1 << 0;
    public const uint VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
    public const uint VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
    public const uint VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
    public const ushort VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
    public const ushort VFIO_REGION_INFO_CAP_TYPE = 2;
    public const ushort VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

    /// <summary>The v1 migration region (the 5.8 series; renamed ..._DEPRECATED in 5.18, same values).</summary>
    public const uint VFIO_REGION_TYPE_MIGRATION = 3;
    public const uint VFIO_REGION_SUBTYPE_MIGRATION = 1;
    public const uint VFIO_REGION_TYPE_MIGRATION_DEPRECATED = 3;
    public const uint VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED = 1;

    // v1 device_state bits. The 5.8 series called them VFIO_DEVICE_STATE_{STOP,RUNNING,SAVING,RESUMING};
    // 5.18 renamed them V1_* when the v2 enum took the plain names, and these are the header's names now.
    public const uint VFIO_DEVICE_STATE_V1_STOP = 0;
    public const uint VFIO_DEVICE_STATE_V1_RUNNING = 1 << 0;
    public const uint VFIO_DEVICE_STATE_V1_SAVING = 1 << 1;
    public const uint VFIO_DEVICE_STATE_V1_RESUMING = 1 << 2;
    public const uint VFIO_DEVICE_STATE_MASK = VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING;

    /// <summary>VFIO_DEVICE_STATE_VALID(state): RESUMING may not be combined with another bit.</summary>
    public static bool VFIO_DEVICE_STATE_VALID(uint state) =>
        (state & VFIO_DEVICE_STATE_V1_RESUMING) == 0 || (state & VFIO_DEVICE_STATE_MASK) == VFIO_DEVICE_STATE_V1_RESUMING;

    /// <summary>VFIO_DEVICE_STATE_IS_ERROR(state): SAVING|RESUMING, left only by VFIO_DEVICE_RESET.</summary>
    public static bool VFIO_DEVICE_STATE_IS_ERROR(uint state) =>
        (state & VFIO_DEVICE_STATE_MASK) == (VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING);

    // PCI regions and IRQs
    public const uint VFIO_PCI_BAR0_REGION_INDEX = 0;
    public const uint VFIO_PCI_BAR1_REGION_INDEX = 1;
    public const uint VFIO_PCI_BAR5_REGION_INDEX = 5;
    public const uint VFIO_PCI_ROM_REGION_INDEX = 6;
    public const uint VFIO_PCI_CONFIG_REGION_INDEX = 7;
    public const uint VFIO_PCI_VGA_REGION_INDEX = 8;
    public const uint VFIO_PCI_NUM_REGIONS = 9;
    public const uint VFIO_PCI_INTX_IRQ_INDEX = 0;
    public const uint VFIO_PCI_MSI_IRQ_INDEX = 1;
    public const uint VFIO_PCI_MSIX_IRQ_INDEX = 2;
    public const uint VFIO_PCI_ERR_IRQ_INDEX = 3;
    public const uint VFIO_PCI_REQ_IRQ_INDEX = 4;
    public const uint VFIO_PCI_NUM_IRQS = 5;
    public const uint VFIO_IRQ_INFO_EVENTFD = 1 << 0;
    public const uint VFIO_IRQ_INFO_MASKABLE = 1 << 1;
    public const uint VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
    public const uint VFIO_IRQ_INFO_NORESIZE = 1 << 3;

    // VFIO_IOMMU_GET_INFO
    public const uint VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
    public const uint VFIO_IOMMU_INFO_CAPS = 1 << 1;
    public const ushort VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
    public const ushort VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
    public const ushort VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

    // VFIO_IOMMU_MAP_DMA / UNMAP_DMA
    public const uint VFIO_DMA_MAP_FLAG_READ = 1 << 0;
    public const uint VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
    public const uint VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
    public const uint VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
    public const uint VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
    public const uint VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

    // VFIO_IOMMU_DIRTY_PAGES
    public const uint VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
    public const uint VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
    public const uint VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

    // VFIO_DEVICE_FEATURE
    public const uint VFIO_DEVICE_FEATURE_MASK = 0xffff;
    public const uint VFIO_DEVICE_FEATURE_GET = 1 << 16;
    public const uint VFIO_DEVICE_FEATURE_SET = 1 << 17;
    public const uint VFIO_DEVICE_FEATURE_PROBE = 1 << 18;
    public const uint VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
    public const uint VFIO_DEVICE_FEATURE_MIGRATION = 1;
    public const uint VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
    public const uint VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
    public const uint VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
    public const uint VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;
    public const uint VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
    public const uint VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;
    public const uint VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;
    public const uint VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;

    // vfio_device_feature_migration.flags
    public const ulong VFIO_MIGRATION_STOP_COPY = 1 << 0;
    public const ulong VFIO_MIGRATION_P2P = 1 << 1;
    public const ulong VFIO_MIGRATION_PRE_COPY = 1 << 2;

    // enum vfio_device_mig_state (v2)
    public const uint VFIO_DEVICE_STATE_ERROR = 0;
    public const uint VFIO_DEVICE_STATE_STOP = 1;
    public const uint VFIO_DEVICE_STATE_RUNNING = 2;
    public const uint VFIO_DEVICE_STATE_STOP_COPY = 3;
    public const uint VFIO_DEVICE_STATE_RESUMING = 4;
    public const uint VFIO_DEVICE_STATE_RUNNING_P2P = 5;
    public const uint VFIO_DEVICE_STATE_PRE_COPY = 6;
    public const uint VFIO_DEVICE_STATE_PRE_COPY_P2P = 7;
    public const uint VFIO_DEVICE_STATE_NR = 8;

    /// <summary>Bitmap limits of type1 dirty tracking (drivers/vfio/vfio_iommu_type1.c).</summary>
    public const ulong DIRTY_BITMAP_PAGES_MAX = int.MaxValue;
    public const ulong DIRTY_BITMAP_SIZE_MAX = 256UL * 1024 * 1024;

    /// <summary>Default dma_entry_limit module parameter of vfio_iommu_type1 (U16_MAX).</summary>
    public const uint DMA_ENTRY_LIMIT = 65535;

    /// <summary>DIRTY_BITMAP_BYTES(n): bytes for n pages, rounded up to whole u64 words.</summary>
    public static ulong DIRTY_BITMAP_BYTES(ulong pages) => (pages + 63) / 64 * 8;

    /// <summary>Ranges DMA_LOGGING_START guarantees (PAGE_SIZE / sizeof(range) on 4 KiB pages).</summary>
    public const uint LOG_MAX_RANGES = 4096 / 16;
}
