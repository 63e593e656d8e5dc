using System.Collections.Generic;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Native;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>VFIO_IOMMU_UNMAP_DMA (vfio_iommu_type1_unmap_dma, vfio_dma_do_unmap; kernel-interface.md b.5, c.5).</summary>
public class Type1UnmapDmaTests
{
    private const uint GetDirty = VfioConstants.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
    private const uint All = VfioConstants.VFIO_DMA_UNMAP_FLAG_ALL;

    private static int UnmapRaw(Type1Harness h, uint argsz, uint flags, ulong iova, ulong size, vfio_bitmap? bitmap, out ulong size_out)
    {
        var buffer = StructBytes.Buffer(new vfio_iommu_type1_dma_unmap { argsz = argsz, flags = flags, iova = iova, size = size }, 24);
        if (bitmap is { } b) StructBytes.Write(buffer, b, 24);
        int rc = h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_UNMAP_DMA, buffer);
        size_out = StructBytes.Read<vfio_iommu_type1_dma_unmap>(buffer).size;
        return rc;
    }

    [Fact]
    public void UnmapDmaOverwritesSizeWithTheBytesUnmapped()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x2000));
        Assert.Equal(0, h.Map(0x104000, 0x1000));
        Assert.Equal(0, h.Unmap(0x0, 0x1000000, out ulong unmapped));
        Assert.Equal(0x3000UL, unmapped);
        Assert.Empty(h.Sim.MappedRanges);
    }

    [Fact]
    public void UnmapDmaOfARangeWithoutMappingsSucceedsWithSizeZero()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x2000));
        Assert.Equal(0, h.Unmap(0x200000, 0x1000, out ulong unmapped));
        Assert.Equal(0UL, unmapped);
        Assert.Single(h.Sim.MappedRanges);
    }

    [Fact]
    public void UnmapDmaArgszFlagsAlignmentSizeAndWrapAreChecked()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x2000));
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 23, 0, 0x100000, 0x2000, null, out _));
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 24, 8, 0x100000, 0x2000, null, out _));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100800, 0x1000));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100000, 0x1800));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100000, 0));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0xfffffffffffff000, 0x2000));
        Assert.Single(h.Sim.MappedRanges);
    }

    [Fact]
    public void UnmapDmaBisectingAMappingIsEinvalInV2AndLeavesSizeUnreported()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100000, 0x1000, out ulong size));   // end inside
        Assert.Equal(0x1000UL, size);                                             // nothing copied back on failure
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x101000, 0x3000));                   // start inside
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x0ff000, 0x2000));
        Assert.Single(h.Sim.MappedRanges);
    }

    [Fact]
    public void UnmapDmaInAV1ContainerTakesWholeMappingsFromTheirFirstIova()
    {
        using var h = Type1Harness.WithType(VfioConstants.VFIO_TYPE1_IOMMU, null, IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        // "an unmap request offset from the beginning of the original mapping will return success with zero sized unmap"
        Assert.Equal(0, h.Unmap(0x101000, 0x1000, out ulong size));
        Assert.Equal(0UL, size);
        // "an unmap request covering the first iova of mapping will unmap the entire range"
        Assert.Equal(0, h.Unmap(0x100000, 0x1000, out size));
        Assert.Equal(0x4000UL, size);
        Assert.Empty(h.Sim.MappedRanges);
    }

    [Fact]
    public void UnmapDmaAllNeedsIovaAndSizeZeroAndUnmapsEverything()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x2000));
        Assert.Equal(0, h.Map(0x7ffffff000, 0x1000));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100000, 0, out _, All));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0, 0x1000, out _, All));
        Assert.Equal(0, h.Unmap(0, 0, out ulong size, All));
        Assert.Equal(0x3000UL, size);
        Assert.Empty(h.Sim.MappedRanges);
    }

    [Fact]
    public void UnmapDmaGetDirtyBitmapCannotBeCombinedWithAllOrVaddr()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Start());
        var bitmap = h.Buffer(8);
        var b = new vfio_bitmap { pgsize = Page, size = 8, data = bitmap.Address };
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty | All, 0, 0, b, out _));
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty | VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 0x1000, b, out _));
    }

    [Fact]
    public void UnmapDmaGetDirtyBitmapChecksArgszBitmapSizeTrackingAndPageSize()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x40000));                  // 64 pages: an 8-byte bitmap
        var bitmap = h.Buffer(16);
        vfio_bitmap B(ulong pgsize, ulong size) => new() { pgsize = pgsize, size = size, data = bitmap.Address };

        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 47, GetDirty, 0x100000, 0x40000, B(Page, 8), out _));
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, B(Page, 8), out _));   // not tracking
        Assert.Equal(0, h.Start());
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, B(Page, 0), out _));
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, B(Page, 4), out _));   // < DIRTY_BITMAP_BYTES(64)
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, B(Page, VfioConstants.DIRTY_BITMAP_SIZE_MAX + 8), out _));
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, B(2 * Page, 8), out _));
        var outside = new vfio_bitmap { pgsize = Page, size = 8, data = 0xffff800000000000 };
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, outside, out _));        // access_ok
        Assert.Equal(-Errno.EINVAL, UnmapRaw(h, 48, GetDirty, 0x100000, 0x20000, B(Page, 8), out _));    // bisects
        Assert.Single(h.Sim.MappedRanges);

        Assert.Equal(0, UnmapRaw(h, 48, GetDirty, 0x100000, 0x40000, B(Page, 8), out ulong size));
        Assert.Equal(0x40000UL, size);
        Assert.Equal(ulong.MaxValue, System.BitConverter.ToUInt64(bitmap.Span));
    }

    [Fact]
    public void UnmapDmaGetDirtyBitmapBitsAreRelativeToTheUnmapIova()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Map(0x108000, 0x4000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.DmaWrite(0x101000, 1));
        Assert.Equal(0, h.Sim.DmaWrite(0x10b000, 0x1000));
        var bitmap = h.Buffer(8);
        Assert.Equal(0, Type1Calls.UnmapDmaWithBitmap(h.Host, h.Container, 0x0fe000, 0x10000, Page, 8, bitmap.Address, out ulong size));
        Assert.Equal(0x8000UL, size);
        Assert.Equal(new List<long> { 3, 13 }, SetBits(bitmap.Span, 16));
    }

    [Fact]
    public void UnmapDmaOfAMappingWithPinnedPagesAsksVendorDriversToUnpin()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Map(0x200000, 0x4000));
        Assert.Equal(0, h.Sim.PinPages(0x101000, 2));
        var notified = new List<(ulong, ulong)>();
        h.Sim.DmaUnmapping += (iova, size) =>
        {
            notified.Add((iova, size));
            h.Sim.UnpinPages(0x101000, 2);
        };
        Assert.Equal(0, h.Unmap(0x100000, 0x104000, out ulong unmapped));
        Assert.Equal(0x8000UL, unmapped);
        Assert.Equal(new List<(ulong, ulong)> { (0x100000, 0x4000) }, notified);   // only the mapping holding pins
    }
}
