using System.Globalization;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// The "== DMA map + dirty tracking" sequence of kernel-interface.md lab 7, step for step: two mappings A (2 MiB at
/// 0x10000000) and B (1 MiB at 0x10300000, a 1 MiB gap after A), every GET_BITMAP the lab made (valid
/// ranges, ranges clubbing A and B, bisecting ranges, bad alignment, bad page size, bitmaps too small or
/// too large), UNMAP_DMA with a bitmap, STOP, and what fails after STOP. A successful read is answered
/// "bits set/total" over the range's pages.
/// </summary>
internal static class DirtyTrackingSequence
{
    private const ulong A = 0x10000000, ASize = 0x200000;
    private const ulong B = 0x10300000, BSize = 0x100000;
    private const ulong PageSize = 4096;

    /// <summary>DIRTY_BITMAP_BYTES(2^31 + 64): one u64 past max_dirty_bitmap_size.</summary>
    private const long OversizedBitmap = 268435464;

    /// <summary>A fresh container holding one group, Type1v2, then the sequence.</summary>
    public static void RunInOwnContainer(VfioHost host, int groupNumber, ConformanceRecorder r)
    {
        using var container = host.Open(VfioHost.ContainerPath);
        using var group = host.Open($"/dev/vfio/{groupNumber}");
        r.Result("VFIO_GROUP_SET_CONTAINER", Type1Calls.SetContainer(host, group, container));
        r.Result("VFIO_SET_IOMMU(TYPE1v2)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        Run(host, container, r);
    }

    public static void Run(VfioHost host, SafeFd container, ConformanceRecorder r)
    {
        using var guest = GuestMemory.Map(host, 0x400000);
        using var bitmap = new NativeBuffer(128);
        ulong vaddr = (ulong)guest.Address;

        Get(host, container, r, bitmap, "GET_BITMAP before START, nothing mapped", A, ASize, PageSize, 64);
        r.Result("MAP_DMA A (2 MiB)", Type1Calls.MapDma(host, container, A, ASize, vaddr));
        r.Result("MAP_DMA B (1 MiB)", Type1Calls.MapDma(host, container, B, BSize, vaddr + (B - A)));
        r.Result("DIRTY_PAGES START", Type1Calls.DirtyPages(host, container, VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_START));

        Get(host, container, r, bitmap, "GET_BITMAP A", A, ASize, PageSize, 64);
        Get(host, container, r, bitmap, "GET_BITMAP A again", A, ASize, PageSize, 64);
        Get(host, container, r, bitmap, "GET_BITMAP B", B, BSize, PageSize, 32);
        Get(host, container, r, bitmap, "GET_BITMAP A..B clubbed, 1 MiB gap", A, 0x400000, PageSize, 128);
        Get(host, container, r, bitmap, "GET_BITMAP bisects A (first half)", A, 0x100000, PageSize, 32);
        Get(host, container, r, bitmap, "GET_BITMAP bisects A (second half)", A + 0x100000, 0x100000, PageSize, 32);
        Get(host, container, r, bitmap, "GET_BITMAP unaligned size", A, 0x200064, PageSize, 72);
        Get(host, container, r, bitmap, "GET_BITMAP unaligned iova", A + 0x200, ASize, PageSize, 64);
        Get(host, container, r, bitmap, "GET_BITMAP wrong pgsize", A, ASize, 8192, 32);
        Get(host, container, r, bitmap, "GET_BITMAP bitmap too small", A, ASize, PageSize, 8);
        using (var oversized = new NativeBuffer(OversizedBitmap))
            Get(host, container, r, oversized, "GET_BITMAP bitmap > max_dirty_bitmap_size", A, 0x80000040000, PageSize, (ulong)OversizedBitmap);

        bitmap.Clear(bitmap.Length);
        int rc = Type1Calls.UnmapDmaWithBitmap(host, container, A, ASize, PageSize, 64, bitmap.Address, out ulong unmapped);
        r.Record("UNMAP_DMA(GET_DIRTY_BITMAP) A", rc < 0 ? ConformanceRecorder.Answer(rc)
            : $"size 0x{unmapped:x} bits {Type1Calls.CountBits(bitmap.Span, (long)(ASize / PageSize))}/{ASize / PageSize}");

        r.Result("DIRTY_PAGES STOP", Type1Calls.DirtyPages(host, container, VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
        Get(host, container, r, bitmap, "GET_BITMAP after STOP", B, BSize, PageSize, 32);
        r.Result("UNMAP_DMA(GET_DIRTY_BITMAP) B after STOP",
            Type1Calls.UnmapDmaWithBitmap(host, container, B, BSize, PageSize, 32, bitmap.Address, out _));
        rc = Type1Calls.UnmapDma(host, container, B, BSize, out unmapped);
        r.Record("UNMAP_DMA B", rc < 0 ? ConformanceRecorder.Answer(rc) : $"size 0x{unmapped:x}");
    }

    private static void Get(VfioHost host, SafeFd container, ConformanceRecorder r, NativeBuffer bitmap, string step,
        ulong iova, ulong size, ulong pgsize, ulong bitmapSize)
    {
        // The kernel ORs into what it finds (kernel-interface.md c.4): a caller zeroes the bitmap before every read.
        bitmap.Clear(System.Math.Min(bitmap.Length, 128));
        int rc = Type1Calls.GetBitmap(host, container, iova, size, pgsize, bitmapSize, bitmap.Address);
        if (rc < 0)
        {
            r.Record(step, ConformanceRecorder.Answer(rc));
            return;
        }
        long pages = (long)(size / pgsize);
        r.Record(step, string.Create(CultureInfo.InvariantCulture, $"bits {Type1Calls.CountBits(bitmap.Span, pages)}/{pages}"));
    }
}

/// <summary>kernel-interface.md lab 7.1: the dirty-tracking sequence in a container holding only the IOMMU-backed group (every mapped page reads dirty).</summary>
public sealed class DirtyIommuScenario : ConformanceScenario
{
    public override string Name => "dirty-iommu";

    public override bool AppliesTo(ConformanceTarget target) => target.IommuGroup is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r) => DirtyTrackingSequence.RunInOwnContainer(target.Host, target.IommuGroup!.Value, r);
}

/// <summary>kernel-interface.md lab 7.3: the same sequence in a container holding only the mdev group (pinned-page scope: mtty pins nothing, so 0 bits).</summary>
public sealed class DirtyMdevScenario : ConformanceScenario
{
    public override string Name => "dirty-mdev";

    public override bool AppliesTo(ConformanceTarget target) => target.MdevGroup is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r) => DirtyTrackingSequence.RunInOwnContainer(target.Host, target.MdevGroup!.Value, r);
}

/// <summary>
/// kernel-interface.md lab 7.4: the IOMMU-backed group and the mdev group in one container. The IOMMU-backed group keeps
/// the container out of pinned-page scope, so every mapped page reads dirty, as in 7.1.
/// </summary>
public sealed class DirtyMixedScenario : ConformanceScenario
{
    public override string Name => "dirty-mixed";

    public override bool AppliesTo(ConformanceTarget target) => target.IommuGroup is not null && target.MdevGroup is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        using var container = host.Open(VfioHost.ContainerPath);
        using var iommuGroup = host.Open($"/dev/vfio/{target.IommuGroup}");
        r.Result("VFIO_GROUP_SET_CONTAINER (IOMMU-backed group)", Type1Calls.SetContainer(host, iommuGroup, container));
        r.Result("VFIO_SET_IOMMU(TYPE1v2)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        using var mdevGroup = host.Open($"/dev/vfio/{target.MdevGroup}");
        r.Result("VFIO_GROUP_SET_CONTAINER (mdev group)", Type1Calls.SetContainer(host, mdevGroup, container));

        int rc = Type1Calls.GetInfo(host, container, 24, out var info);
        var i = StructBytes.Read<vfio_iommu_type1_info>(info);
        r.Record("VFIO_IOMMU_GET_INFO(argsz=24)", rc < 0 ? ConformanceRecorder.Answer(rc)
            : string.Create(CultureInfo.InvariantCulture, $"argsz {i.argsz} flags 0x{i.flags:x} iova_pgsizes 0x{i.iova_pgsizes:x}"));

        DirtyTrackingSequence.Run(host, container, r);
    }
}
