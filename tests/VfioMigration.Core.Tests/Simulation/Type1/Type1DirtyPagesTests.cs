using System;
using System.Collections.Generic;
using VfioMigration.Core.Native;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>VFIO_IOMMU_DIRTY_PAGES, check by check in the order of kernel-interface.md c.2 (vfio_iommu_type1_dirty_pages).</summary>
public class Type1DirtyPagesTests
{
    private const uint Start = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
    private const uint Stop = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
    private const uint Get = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
    private const ulong InKernelHalf = 0xffff800000000000;

    private static int DirtyRaw(Type1Harness h, uint argsz, uint flags, byte[]? tail = null, int length = -1)
    {
        var whole = StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap { argsz = argsz, flags = flags }, tail?.Length ?? 0);
        tail?.CopyTo(whole, 8);
        var buffer = whole.AsSpan(0, length >= 0 ? length : whole.Length);    // a shorter buffer: the copy faults
        return h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, buffer);
    }

    private static byte[] Range(ulong iova, ulong size, ulong pgsize, ulong bitmapSize, ulong data) =>
        StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap_get
        {
            iova = iova,
            size = size,
            bitmap = new vfio_bitmap { pgsize = pgsize, size = bitmapSize, data = data },
        });

    /// <summary>A container with A = 2 MiB at 0x10000000 mapped and tracking started (the lab's layout).</summary>
    private static Type1Harness Tracking(int group = IommuGroup)
    {
        var h = Type1Harness.With(group);
        Assert.Equal(0, h.Map(0x10000000, 0x200000));
        Assert.Equal(0, h.Start());
        return h;
    }

    [Fact]
    public void DirtyPagesInAType1V1ContainerIsEaccesBeforeAnyOtherCheck()
    {
        using var h = Type1Harness.WithType(VfioConstants.VFIO_TYPE1_IOMMU, null, IommuGroup);
        Assert.Equal(-Errno.EACCES, DirtyRaw(h, 8, Start));
        Assert.Equal(-Errno.EACCES, DirtyRaw(h, 0, 0xff));
        Assert.Equal(-Errno.EACCES, DirtyRaw(h, 0, 0, length: 0));
    }

    [Fact]
    public void DirtyPagesArgszBelow8OrUnknownFlagsIsEinval()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(-Errno.EFAULT, DirtyRaw(h, 8, Start, length: 4));
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 7, Start));
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 8, Start | 8));
    }

    [Fact]
    public void DirtyPagesNeedsExactlyOneFlag()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 8, 0));
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 8, Start | Stop));
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 48, Start | Get, new byte[40]));
        Assert.False(h.Sim.Iommu!.DirtyPageTracking);
    }

    [Fact]
    public void DirtyPagesStartIsIdempotentAndKeepsWhatWasLogged()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.DmaWrite(0x103000, 1));
        Assert.Equal(0, h.Start());                                      // no new bitmaps: the write is still there
        Assert.Equal(new List<long> { 3 }, h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void DirtyPagesStopAlwaysSucceeds()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Stop());
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Stop());
        Assert.Equal(0, h.Stop());
        Assert.False(h.Sim.Iommu!.DirtyPageTracking);
    }

    [Fact]
    public void GetBitmapWithArgszBelow48IsEinval()
    {
        using var h = Tracking();
        var bitmap = h.Buffer(64);
        var range = Range(0x10000000, 0x200000, Page, 64, bitmap.Address);
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 8, Get, range));
        Assert.Equal(-Errno.EINVAL, DirtyRaw(h, 47, Get, range));
        Assert.Equal(0, DirtyRaw(h, 48, Get, range));
        Assert.Equal(0, DirtyRaw(h, 4096, Get, range));                  // a larger argsz is fine
    }

    [Fact]
    public void GetBitmapOfARangeThatWrapsIsEinval()
    {
        using var h = Tracking();
        var bitmap = h.Buffer(8);
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0xfffffffffffff000, 0x2000, Page, 8, bitmap.Address));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0xfffffffffffff000, 0x1000, Page, 8, bitmap.Address));   // iova + size == 0 wraps too
    }

    [Fact]
    public void GetBitmapWithABitmapOutsideUserSpaceIsEinvalNotEfault()
    {
        using var h = Tracking();
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, Page, 64, InKernelHalf));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, Page, 64, UserMemory.TaskSizeMax - 32));
    }

    [Theory]
    [InlineData(0x800UL, 8UL)]                                             // npages = 0
    [InlineData(0x200000UL, 0UL)]                                          // bitmap.size = 0
    [InlineData(0x200000UL, 63UL)]                                         // < DIRTY_BITMAP_BYTES(512)
    [InlineData(0x200000UL, VfioConstants.DIRTY_BITMAP_SIZE_MAX + 1)]     // > max_dirty_bitmap_size
    public void GetBitmapVerifiesTheBitmapSize(ulong size, ulong bitmapSize)
    {
        using var h = Tracking();
        var bitmap = h.Buffer(64);
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, size, Page, bitmapSize, bitmap.Address));
    }

    [Fact]
    public void GetBitmapAtExactlyMaxDirtyBitmapSizePassesTheSizeCheck()
    {
        // 2^31 pages (8 TiB at 4 KiB) need DIRTY_BITMAP_BYTES = 256 MiB, exactly the limit: accepted. The range
        // covers A and empty space; only A's words are written.
        using var h = Tracking(MdevGroup);
        var bitmap = h.Buffer(64);
        Assert.Equal(0, h.GetBitmap(0x10000000, 1UL << 43, Page, VfioConstants.DIRTY_BITMAP_SIZE_MAX, bitmap.Address));
    }

    [Fact]
    public void GetBitmapPageSizeMustBeTheSmallestIommuPage()
    {
        using var h = Tracking();
        var bitmap = h.Buffer(64);
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, 0x2000, 32, bitmap.Address));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, 0x200000, 8, bitmap.Address));   // 2M is an IOMMU page size too
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, 0x800, 128, bitmap.Address));
    }

    [Fact]
    public void GetBitmapIovaAndSizeMustBePageAligned()
    {
        using var h = Tracking();
        var bitmap = h.Buffer(128);
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000200, 0x200000, Page, 64, bitmap.Address));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200064, Page, 72, bitmap.Address));
    }

    [Fact]
    public void GetBitmapBeforeStartOrAfterStopIsEinval()
    {
        using var h = Type1Harness.With(IommuGroup);
        var bitmap = h.Buffer(64);
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, bitmap));     // nothing mapped, not started
        Assert.Equal(0, h.Map(0x10000000, 0x200000));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, bitmap));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.GetBitmap(0x10000000, 0x200000, bitmap));
        Assert.Equal(0, h.Stop());
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, bitmap));
    }

    [Fact]
    public void GetBitmapBisectingAMappingAtEitherEndIsEinval()
    {
        using var h = Tracking();
        var bitmap = h.Buffer(64);
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x100000, bitmap));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10100000, 0x100000, bitmap));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x0ff00000, 0x200000, Page, 64, bitmap.Address));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10100000, 0x200000, Page, 64, bitmap.Address));
    }

    [Fact]
    public void GetBitmapMayClubAdjacentMappingsAndSpanGapsWhoseBitsStayZero()
    {
        using var h = Tracking();
        Assert.Equal(0, h.Map(0x10200000, 0x100000));                 // adjacent to A
        Assert.Equal(0, h.Map(0x10400000, 0x100000));                 // after a 1 MiB gap
        var dirty = h.Dirty(0x0ff00000, 0x700000);                    // starts and ends in gaps
        Assert.Equal(512 + 256 + 256, dirty.Count);
        Assert.Equal(256, dirty[0]);                                   // first bit of A: relative to the request iova
        Assert.DoesNotContain(1024 + 255, dirty);                      // the gap between the 2nd and 3rd mapping
        Assert.Contains(1024 + 256, dirty);
    }

    [Fact]
    public void GetBitmapFaultsOnlyWhenItCopiesAndOnlyAfterEveryOtherCheck()
    {
        using var h = Tracking();
        // A null bitmap passes access_ok; bad requests still answer EINVAL, a good one faults on the copy.
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x100000, Page, 32, 0));
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, 0x2000, 32, 0));
        Assert.Equal(-Errno.EFAULT, h.GetBitmap(0x10000000, 0x200000, Page, 64, 0));
        // A range holding no mapping copies nothing, so nothing can fault.
        Assert.Equal(0, h.GetBitmap(0x20000000, 0x200000, Page, 64, 0));
        Assert.Equal(0, h.Stop());
        Assert.Equal(-Errno.EINVAL, h.GetBitmap(0x10000000, 0x200000, Page, 64, 0));
    }

    [Fact]
    public void GetBitmapOfARangeBeyondTheFirstWordFaultsOnTheLeftoverRead()
    {
        // When a mapping's first bit is not at a word boundary the kernel first reads the user's word there.
        using var h = Tracking();
        Assert.Equal(-Errno.EFAULT, h.GetBitmap(0x0fffd000, 0x203000, Page, 72, 0));
    }

    [Fact]
    public void StartOrMapWhileTrackingOfAMappingBeyondDirtyBitmapPagesMaxIsEinval()
    {
        // vfio_dma_bitmap_alloc: a mapping of more than INT_MAX pages cannot have a bitmap; 2^31 pages (8 TiB)
        // is one too many, although a GET_BITMAP range of 2^31 pages is accepted.
        const ulong tooBig = 1UL << 43;
        using (var h = Type1Harness.With(MdevGroup))
        {
            Assert.Equal(0, h.Map(0x100000000000, tooBig, 0x7f0000000000));   // mdev-only: nothing pinned at map time
            Assert.Equal(-Errno.EINVAL, h.Start());
            Assert.False(h.Sim.Iommu!.DirtyPageTracking);
        }
        using (var h = Type1Harness.With(MdevGroup))
        {
            Assert.Equal(0, h.Start());
            Assert.Equal(-Errno.EINVAL, h.Map(0x100000000000, tooBig, 0x7f0000000000));
            Assert.Empty(h.Sim.MappedRanges);
            Assert.Equal(0, h.Map(0x100000000000, tooBig - 0x1000, 0x7f0000000000));   // INT_MAX pages: fine
        }
    }
}
