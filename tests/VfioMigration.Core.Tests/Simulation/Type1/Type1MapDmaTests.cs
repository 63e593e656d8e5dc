using VfioMigration.Core.Conformance;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>VFIO_IOMMU_MAP_DMA (vfio_iommu_type1_map_dma, vfio_dma_do_map).</summary>
public class Type1MapDmaTests
{
    private static int MapRaw(Type1Harness h, uint argsz, uint flags, ulong vaddr, ulong iova, ulong size)
    {
        var map = StructBytes.Buffer(new vfio_iommu_type1_dma_map { argsz = argsz, flags = flags, vaddr = vaddr, iova = iova, size = size });
        return h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_MAP_DMA, map);
    }

    [Fact]
    public void MapDmaWithArgszBelow32OrUnknownFlagsIsEinval()
    {
        using var h = Type1Harness.With(IommuGroup);
        ulong vaddr = h.Guest(0x1000);
        Assert.Equal(-Errno.EINVAL, MapRaw(h, 31, Type1Calls.ReadWrite, vaddr, 0x100000, 0x1000));
        Assert.Equal(-Errno.EINVAL, MapRaw(h, 32, Type1Calls.ReadWrite | 8, vaddr, 0x100000, 0x1000));
        Assert.Equal(-Errno.EFAULT, h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_MAP_DMA, new byte[24]));
        Assert.Equal(0, MapRaw(h, 32, Type1Calls.ReadWrite, vaddr, 0x100000, 0x1000));
    }

    [Fact]
    public void MapDmaNeedsReadOrWriteAndNeverTogetherWithVaddr()
    {
        using var h = Type1Harness.With(IommuGroup);
        ulong vaddr = h.Guest(0x1000);
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x1000, vaddr, 0));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x1000, vaddr, VfioConstants.VFIO_DMA_MAP_FLAG_READ | VfioConstants.VFIO_DMA_MAP_FLAG_VADDR));
        Assert.Equal(0, h.Map(0x100000, 0x1000, vaddr, VfioConstants.VFIO_DMA_MAP_FLAG_READ));
        Assert.Equal(0, h.Map(0x200000, 0x1000, vaddr, VfioConstants.VFIO_DMA_MAP_FLAG_WRITE));
    }

    [Fact]
    public void MapDmaMustBeAlignedToTheSmallestIommuPageAndNotEmpty()
    {
        using var h = Type1Harness.With(IommuGroup);
        ulong vaddr = h.Guest(0x3000);
        Assert.Equal(-Errno.EINVAL, h.Map(0x100800, 0x1000, vaddr));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x1800, vaddr));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x1000, vaddr + 0x10));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0, vaddr));
        Assert.Equal(0, h.Map(0x100000, 0x1000, vaddr));                // 4 KiB, though the IOMMU also has 2M/1G pages
    }

    [Fact]
    public void MapDmaThatWrapsIsEinval()
    {
        using var h = Type1Harness.With(MdevGroup);
        ulong vaddr = h.Guest(0x2000);
        Assert.Equal(-Errno.EINVAL, h.Map(0xfffffffffffff000, 0x2000, vaddr));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x2000, 0xfffffffffffff000));
        Assert.Equal(0, h.Map(0xfffffffffffff000, 0x1000, vaddr));      // ends exactly at 2^64 - 1: allowed
    }

    [Fact]
    public void MapDmaOverlappingAnExistingMappingIsEexist()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(-Errno.EEXIST, h.Map(0x100000, 0x10000));
        Assert.Equal(-Errno.EEXIST, h.Map(0xff000, 0x2000));
        Assert.Equal(-Errno.EEXIST, h.Map(0x10f000, 0x1000));
        Assert.Equal(-Errno.EEXIST, h.Map(0x0, 0x1000000));
        Assert.Equal(0, h.Map(0x110000, 0x1000));                       // adjacent is fine
        Assert.Equal(0, h.Map(0xff000, 0x1000));
    }

    [Fact]
    public void MapDmaOutsideTheIovaRangesIsEinvalInAnIommuBackedContainer()
    {
        using var h = Type1Harness.With(IommuGroup);
        ulong vaddr = h.Guest(0x200000);
        Assert.Equal(-Errno.EINVAL, h.Map(0xfee00000, 0x1000, vaddr));   // the MSI window (reserved region)
        Assert.Equal(-Errno.EINVAL, h.Map(0xfedff000, 0x2000, vaddr));   // straddles its start
        Assert.Equal(-Errno.EINVAL, h.Map(0x8000000000, 0x1000, vaddr)); // above the 39-bit aperture
        Assert.Equal(-Errno.EINVAL, h.Map(0x7ffffff000, 0x2000, vaddr));
        Assert.Equal(0, h.Map(0xfedff000, 0x1000, vaddr));
        Assert.Equal(0, h.Map(0xfef00000, 0x1000, vaddr));
        Assert.Equal(0, h.Map(0x7ffffff000, 0x1000, vaddr));
    }

    [Fact]
    public void MapDmaAnywhereInAnMdevOnlyContainer()
    {
        // "a container with a single mdev device will have an empty list": no IOVA restriction.
        using var h = Type1Harness.With(MdevGroup);
        ulong vaddr = h.Guest(0x1000);
        Assert.Equal(0, h.Map(0xfee00000, 0x1000, vaddr));
        Assert.Equal(0, h.Map(0x100000000000, 0x1000, vaddr));
    }

    [Fact]
    public void MapDmaBeyondTheDmaEntryLimitIsEnospcCheckedBeforeTheIovaRange()
    {
        var config = SimTopologies.Lab();
        config.DmaEntryLimit = 2;
        using var h = Type1Harness.With(config, IommuGroup);
        ulong vaddr = h.Guest(0x1000);
        Assert.Equal(0, h.Map(0x100000, 0x1000, vaddr));
        Assert.Equal(0, h.Map(0x200000, 0x1000, vaddr));                 // the same memory may back several mappings
        Assert.Equal(-Errno.ENOSPC, h.Map(0x300000, 0x1000, vaddr));
        Assert.Equal(-Errno.ENOSPC, h.Map(0xfee00000, 0x1000, vaddr));   // ENOSPC before the reserved-region EINVAL
        Assert.Equal(-Errno.EEXIST, h.Map(0x100000, 0x1000, vaddr));     // EEXIST before ENOSPC
        Assert.Equal(0, h.Unmap(0x100000, 0x1000));
        Assert.Equal(0, h.Map(0x300000, 0x1000, vaddr));
    }

    [Fact]
    public void MapDmaOfMemoryTheProcessDoesNotHaveIsEfaultWhenPagesArePinned()
    {
        ulong gone;
        using (var probe = new Type1Harness())
        {
            var memory = GuestMemory.Map(probe.Host, 0x10000);
            gone = (ulong)memory.Address;
            memory.Dispose();
        }
        using (var h = Type1Harness.With(IommuGroup))
        {
            Assert.Equal(-Errno.EFAULT, h.Map(0x100000, 0x10000, gone));
            Assert.Equal(-Errno.EFAULT, h.Map(0x100000, 0x1000, 0x1000));  // page zero is never mapped
            Assert.Empty(h.Sim.MappedRanges);
            Assert.Equal(VfioConstants.DMA_ENTRY_LIMIT, h.Sim.Iommu!.DmaAvail);
        }
        // mdev-only: nothing is pinned at map time (vendor drivers pin on demand), so the map succeeds.
        using (var h = Type1Harness.With(MdevGroup))
            Assert.Equal(0, h.Map(0x100000, 0x10000, gone));
    }

    [Fact]
    public void MapDmaWritableFromReadOnlyMemoryIsEfault()
    {
        using var h = Type1Harness.With(IommuGroup);
        nint ro = Libc.mmap(0, 0x2000, Libc.PROT_READ, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        Assert.NotEqual(Libc.MAP_FAILED, ro);
        try
        {
            Assert.Equal(-Errno.EFAULT, h.Map(0x100000, 0x2000, (ulong)ro, VfioConstants.VFIO_DMA_MAP_FLAG_WRITE | VfioConstants.VFIO_DMA_MAP_FLAG_READ));
            Assert.Equal(0, h.Map(0x100000, 0x2000, (ulong)ro, VfioConstants.VFIO_DMA_MAP_FLAG_READ));
        }
        finally
        {
            Libc.munmap(ro, 0x2000);
        }
    }

    [Fact]
    public void MapDmaWhileTrackingGetsABitmapAtMapTime()
    {
        using (var h = Type1Harness.With(IommuGroup))
        {
            Assert.Equal(0, h.Start());
            Assert.Equal(0, h.Map(0x100000, 0x8000));
            Assert.Equal(8, h.Dirty(0x100000, 0x8000).Count);
        }
        using (var h = Type1Harness.With(MdevGroup))
        {
            Assert.Equal(0, h.Start());
            Assert.Equal(0, h.Map(0x100000, 0x8000));
            Assert.Equal(0, h.Sim.DmaWrite(0x102000, 1));
            Assert.Equal(new long[] { 2 }, h.Dirty(0x100000, 0x8000));
        }
    }

    [Fact]
    public void MapDmaVaddrUpdatesOnlyAMappingWhoseVaddrWasInvalidated()
    {
        using var h = Type1Harness.With(IommuGroup);
        ulong vaddr = h.Guest(0x2000), moved = h.Guest(0x2000);
        const uint setVaddr = VfioConstants.VFIO_DMA_MAP_FLAG_VADDR;
        Assert.Equal(-Errno.ENOENT, h.Map(0x100000, 0x2000, moved, setVaddr));
        Assert.Equal(0, h.Map(0x100000, 0x2000, vaddr));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x2000, moved, setVaddr));     // still valid

        Assert.Equal(0, h.Unmap(0x100000, 0x2000, out ulong invalidated, VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR));
        Assert.Equal(0x2000UL, invalidated);
        Assert.Single(h.Sim.MappedRanges);                                          // invalidated, not unmapped
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100000, 0x2000, out _, VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x1000, moved, setVaddr));     // must name the whole mapping
        Assert.Equal(0, h.Map(0x100000, 0x2000, moved, setVaddr));
        Assert.Equal(moved, h.Sim.Iommu!.Mappings[0].Vaddr);
    }

    [Fact]
    public void UnmapDmaVaddrIsEbusyWithAnMdevInTheContainer()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x2000));
        Assert.Equal(-Errno.EBUSY, h.Unmap(0x100000, 0x2000, out _, VfioConstants.VFIO_DMA_UNMAP_FLAG_VADDR));
    }
}
