using System.Collections.Generic;
using VfioMigration.Core.Native;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>What device models use: vfio_pin_pages, vfio_unpin_pages, vfio_dma_rw, and the mapped ranges.</summary>
public class Type1PinningTests
{
    [Fact]
    public void PinPagesOutsideEveryMappingIsEinvalAndPinsNothing()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Start());
        Assert.Equal(-Errno.EINVAL, h.Sim.PinPages(0x103000, 2));       // the 2nd page is past the mapping
        Assert.Equal(-Errno.EINVAL, h.Sim.PinPages(0x200000, 1));
        Assert.Empty(h.Sim.Iommu!.Mappings[0].Pins);
        // The page that was pinned and rolled back was marked dirty on the way, as the kernel leaves it.
        Assert.Equal(new List<long> { 3 }, h.Dirty(0x100000, 0x4000));
        Assert.Empty(h.Dirty(0x100000, 0x4000));
    }

    [Fact]
    public void PinPagesChecksCountAlignmentAndTheMappingsPermissions()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x400000));
        ulong ro = h.Guest(0x1000);
        Assert.Equal(0, h.Map(0x800000, 0x1000, ro, VfioConstants.VFIO_DMA_MAP_FLAG_READ));
        Assert.Equal(-Errno.EINVAL, h.Sim.PinPages(0x100000, 0));
        Assert.Equal(-Errno.E2BIG, h.Sim.PinPages(0x100000, 513));    // VFIO_PIN_PAGES_MAX_ENTRIES
        Assert.Equal(0, h.Sim.PinPages(0x100000, 512));
        Assert.Equal(-Errno.EINVAL, h.Sim.PinPages(0x100800, 1));
        Assert.Equal(-Errno.EPERM, h.Sim.PinPages(0x800000, 1));       // the driver pins read-write
    }

    [Fact]
    public void PinPagesInAType1V1ContainerIsEacces()
    {
        using var h = Type1Harness.WithType(VfioConstants.VFIO_TYPE1_IOMMU, null, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(-Errno.EACCES, h.Sim.PinPages(0x100000, 1));
    }

    [Fact]
    public void PinPagesAfterTheUserAddressWasInvalidatedIsEbusy()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Unmap(0x100000, 0x4000, out _, VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR));
        Assert.Equal(-Errno.EBUSY, h.Sim.PinPages(0x100000, 1));
        Assert.Equal(-Errno.EBUSY, h.Sim.DmaWrite(0x100000, 1));
    }

    [Fact]
    public void PinPagesOfAMappingWhoseMemoryIsGoneIsEfault()
    {
        // mdev-only: MAP_DMA pinned nothing, so the address is first touched when the driver pins.
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000, 0x1000));              // page zero of the process is never mapped
        Assert.Equal(-Errno.EFAULT, h.Sim.PinPages(0x100000, 1));
    }

    [Fact]
    public void PinsAreCountedAndUnpinPagesReleasesOneReferencePerPage()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.PinPages(0x101000, 1));
        Assert.Equal(0, h.Sim.PinPages(0x101000, 1));
        h.Sim.UnpinPages(0x101000, 1);
        Assert.Equal(new List<long> { 1 }, h.Dirty(0x100000, 0x4000));
        Assert.Equal(new List<long> { 1 }, h.Dirty(0x100000, 0x4000));  // one pin left: still dirty
        h.Sim.UnpinPages(0x101000, 1);
        // The last read re-populated the bitmap with the page while it was pinned: reported once more, then clean.
        Assert.Equal(new List<long> { 1 }, h.Dirty(0x100000, 0x4000));
        Assert.Empty(h.Dirty(0x100000, 0x4000));
    }

    [Fact]
    public void DmaWriteMarksPagesDirtyOnlyWhileTrackingAndTheNextReadClearsThem()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Map(0x104000, 0x4000));                       // adjacent: one write may cross into it
        Assert.Equal(0, h.Sim.DmaWrite(0x100000, 1));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.DmaWrite(0x103ff0, 0x20));
        Assert.Equal(new List<long> { 3, 4 }, h.Dirty(0x100000, 0x8000));
        Assert.Empty(h.Dirty(0x100000, 0x8000));
    }

    [Fact]
    public void DmaWriteOutsideEveryMappingOrToAReadOnlyMappingFails()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(0, h.Map(0x200000, 0x1000, h.Guest(0x1000), VfioConstants.VFIO_DMA_MAP_FLAG_READ));
        Assert.Equal(-Errno.EINVAL, h.Sim.DmaWrite(0x103000, 0x2000));  // runs off the end into nothing
        Assert.Equal(-Errno.EINVAL, h.Sim.DmaWrite(0x300000, 1));
        Assert.Equal(-Errno.EPERM, h.Sim.DmaWrite(0x200000, 1));
        Assert.Equal(-Errno.EINVAL, h.Sim.DmaWrite(0x100000, 0));
    }

    [Fact]
    public void DeviceCallsWithoutAnIommuDriverAreEnotty()
    {
        using var h = new Type1Harness();
        Assert.Equal(-Errno.ENOTTY, h.Sim.PinPages(0x100000, 1));
        Assert.Equal(-Errno.ENOTTY, h.Sim.DmaWrite(0x100000, 1));
        h.Sim.UnpinPages(0x100000, 1);
    }

    [Fact]
    public void MappedRangesListTheMappingsInIovaOrder()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Empty(h.Sim.MappedRanges);
        Assert.Equal(0, h.Map(0x300000, 0x1000));
        Assert.Equal(0, h.Map(0x100000, 0x4000));
        Assert.Equal(new List<(ulong, ulong)> { (0x100000, 0x4000), (0x300000, 0x1000) }, h.Sim.MappedRanges);
        Assert.Equal(0, h.Unmap(0x100000, 0x4000));
        Assert.Equal(new List<(ulong, ulong)> { (0x300000, 0x1000) }, h.Sim.MappedRanges);
    }

    [Fact]
    public void DevicesCatchUpWithTheClockBeforeEveryDirtyReadSoTheirLatestWritesCount()
    {
        // The container hands the driver a catch-up callback (every device's Tick); stand in for a device that
        // writes page 2 whenever it catches up, and one that pins page 6 before tracking starts.
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x8000));
        Assert.NotNull(h.Sim.Iommu!.BeforeDirtyRead);
        int catchUps = 0;
        h.Sim.Iommu.BeforeDirtyRead = () =>
        {
            catchUps++;
            if (catchUps == 1) Assert.Equal(0, h.Sim.PinPages(0x106000, 1));
            else Assert.Equal(0, h.Sim.DmaWrite(0x102000, 1));
        };

        Assert.Equal(0, h.Start());                                       // catch-up 1: the pin is pre-marked
        Assert.Equal(new List<long> { 2, 6 }, h.Dirty(0x100000, 0x8000));  // catch-up 2: its write counts now
        var bitmap = h.Buffer(8);
        Assert.Equal(0, VfioMigration.Core.Conformance.Type1Calls.UnmapDmaWithBitmap(h.Host, h.Container, 0x100000, 0x8000, Page, 8, bitmap.Address, out _));   // catch-up 3
        Assert.Equal(new List<long> { 2, 6 }, SetBits(bitmap.Span, 8));
        Assert.Equal(3, catchUps);
        Assert.Equal(0, h.Stop());
        Assert.Equal(3, catchUps);                                        // STOP reads nothing
    }
}

