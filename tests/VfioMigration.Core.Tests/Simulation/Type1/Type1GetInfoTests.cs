using System.Collections.Generic;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>VFIO_IOMMU_GET_INFO (vfio_iommu_type1_get_info, Linux 6.12; kernel-interface.md lab 7.1, 7.3, 9).</summary>
public class Type1GetInfoTests
{
    private static List<(int At, ushort Id, ushort Version, uint Next)> Chain(byte[] info)
    {
        var chain = new List<(int, ushort, ushort, uint)>();
        uint at = StructBytes.Read<vfio_iommu_type1_info>(info).cap_offset;
        while (at != 0 && chain.Count < 8)
        {
            var h = StructBytes.Read<vfio_info_cap_header>(info, (int)at);
            chain.Add(((int)at, h.id, h.version, h.next));
            at = h.next;
        }
        return chain;
    }

    [Fact]
    public void GetInfoWithArgszBelowMinsz16IsEinval()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(-Errno.EINVAL, Type1Calls.GetInfo(h.Host, h.Container, 15, out _, 24));
        Assert.Equal(-Errno.EINVAL, Type1Calls.GetInfo(h.Host, h.Container, 0, out _, 24));
    }

    [Fact]
    public void GetInfoWithArgsz16WritesOnly16BytesButStillReportsCapsAndTheNeededSize()
    {
        using var h = Type1Harness.With(IommuGroup);
        var buffer = new byte[32];
        System.Array.Fill(buffer, (byte)0xAA);
        System.BitConverter.TryWriteBytes(buffer, 16u);
        Assert.Equal(0, h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_GET_INFO, buffer));
        var info = StructBytes.Read<vfio_iommu_type1_info>(buffer);
        Assert.Equal((120u, VfioConstants.VFIO_IOMMU_INFO_PGSIZES | VfioConstants.VFIO_IOMMU_INFO_CAPS, 0x40201000UL),
            (info.argsz, info.flags, info.iova_pgsizes));
        Assert.All(buffer[16..], b => Assert.Equal(0xAA, b));           // minsz = min(argsz, sizeof(info))
    }

    [Fact]
    public void GetInfoTooSmallForTheCapsSetsCapsFlagNeededArgszAndCapOffsetZero()
    {
        using var h = Type1Harness.With(IommuGroup);
        var buffer = new byte[200];
        System.Array.Fill(buffer, (byte)0xAA);
        System.BitConverter.TryWriteBytes(buffer, 119u);
        Assert.Equal(0, h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_GET_INFO, buffer));
        var info = StructBytes.Read<vfio_iommu_type1_info>(buffer);
        Assert.Equal((120u, 3u, 0u, 0u), (info.argsz, info.flags, info.cap_offset, info.pad));
        Assert.All(buffer[24..], b => Assert.Equal(0xAA, b));           // no capability copied
    }

    [Fact]
    public void GetInfoOfAnIommuBackedContainerIs120BytesMigrationThenDmaAvailThenIovaRange()
    {
        using var h = Type1Harness.With(IommuGroup);
        var info = h.Info();
        var head = StructBytes.Read<vfio_iommu_type1_info>(info);
        Assert.Equal((120u, 3u, 0x40201000UL, 24u), (head.argsz, head.flags, head.iova_pgsizes, head.cap_offset));
        Assert.Equal(new List<(int, ushort, ushort, uint)> { (24, 2, 1, 56), (56, 3, 1, 72), (72, 1, 1, 0) }, Chain(info));

        var mig = StructBytes.Read<vfio_iommu_type1_info_cap_migration>(info, 24);
        Assert.Equal((0u, 0x1000UL, 268435456UL), (mig.flags, mig.pgsize_bitmap, mig.max_dirty_bitmap_size));
        Assert.Equal(new byte[4], info[36..40]);                         // the 4 pad bytes after flags are zero
        Assert.Equal(65535u, StructBytes.Read<vfio_iommu_type1_info_dma_avail>(info, 56).avail);
        Assert.Equal(new byte[4], info[68..72]);                         // 6.12 pads DMA_AVAIL's 12 bytes to 16
        var ranges = StructBytes.Read<vfio_iommu_type1_info_cap_iova_range>(info, 72);
        Assert.Equal(2u, ranges.nr_iovas);
        Assert.Equal((0UL, 0xfedfffffUL), (StructBytes.Read<vfio_iova_range>(info, 88).start, StructBytes.Read<vfio_iova_range>(info, 88).end));
        Assert.Equal((0xfef00000UL, 0x7fffffffffUL), (StructBytes.Read<vfio_iova_range>(info, 104).start, StructBytes.Read<vfio_iova_range>(info, 104).end));
    }

    [Fact]
    public void GetInfoOfAnMdevOnlyContainerIs72BytesWithoutIovaRangeAndPageMask()
    {
        using var h = Type1Harness.With(MdevGroup);
        var info = h.Info();
        var head = StructBytes.Read<vfio_iommu_type1_info>(info);
        Assert.Equal((72u, 3u, 0xfffffffffffff000UL, 24u), (head.argsz, head.flags, head.iova_pgsizes, head.cap_offset));
        Assert.Equal(new List<(int, ushort, ushort, uint)> { (24, 2, 1, 56), (56, 3, 1, 0) }, Chain(info));
        Assert.Equal(0x1000UL, StructBytes.Read<vfio_iommu_type1_info_cap_migration>(info, 24).pgsize_bitmap);
    }

    [Fact]
    public void GetInfoOfAMixedContainerIsTheIommuBackedOne()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        var info = h.Info();
        Assert.Equal(120u, StructBytes.Read<vfio_iommu_type1_info>(info).argsz);
        Assert.Equal(0x40201000UL, StructBytes.Read<vfio_iommu_type1_info>(info).iova_pgsizes);
    }

    [Fact]
    public void GetInfoDmaAvailIsTheEntryLimitMinusTheMappings()
    {
        var config = SimTopologies.Lab();
        config.DmaEntryLimit = 10;
        using var h = Type1Harness.With(config, IommuGroup);
        Assert.Equal(10u, StructBytes.Read<vfio_iommu_type1_info_dma_avail>(h.Info(), 56).avail);
        for (ulong i = 0; i < 3; i++) Assert.Equal(0, h.Map(0x100000 + i * 0x10000, 0x1000));
        Assert.Equal(7u, StructBytes.Read<vfio_iommu_type1_info_dma_avail>(h.Info(), 56).avail);
        Assert.Equal(0, h.Unmap(0x100000, 0x1000));
        Assert.Equal(8u, StructBytes.Read<vfio_iommu_type1_info_dma_avail>(h.Info(), 56).avail);
    }

    [Fact]
    public void GetInfoPageSizesAndIovaRangesComeFromTheHostIommu()
    {
        var config = SimTopologies.Lab();
        config.IommuPageSizes = 0x200000 | 0x10000 | 0x800;             // a sub-page size is shown as PAGE_SIZE
        config.IovaRanges = new() { (0x1000, 0xfffff), (0x200000, 0x2fffff), (0x400000, 0xffffffffff) };
        using var h = Type1Harness.With(config, IommuGroup);
        var info = h.Info();
        Assert.Equal(0x200000UL | 0x10000 | 0x1000, StructBytes.Read<vfio_iommu_type1_info>(info).iova_pgsizes);
        Assert.Equal(24u + 32 + 16 + 16 + 3 * 16, StructBytes.Read<vfio_iommu_type1_info>(info).argsz);
        Assert.Equal(3u, StructBytes.Read<vfio_iommu_type1_info_cap_iova_range>(info, 72).nr_iovas);
        Assert.Equal(0x400000UL, StructBytes.Read<vfio_iova_range>(info, 120).start);
        Assert.Equal(0x1000UL, StructBytes.Read<vfio_iommu_type1_info_cap_migration>(info, 24).pgsize_bitmap);
    }

    [Fact]
    public void GetInfoAfterTheLastIommuGroupLeftAMixedContainerShowsTheWholeAddressSpace()
    {
        // vfio_iommu_aper_expand + resv_refresh with no domain left: one range [0, 2^64-1]; pgsizes back to PAGE_MASK.
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Detach(IommuGroup));
        var info = h.Info();
        var head = StructBytes.Read<vfio_iommu_type1_info>(info);
        Assert.Equal((104u, 0xfffffffffffff000UL), (head.argsz, head.iova_pgsizes));
        Assert.Equal(1u, StructBytes.Read<vfio_iommu_type1_info_cap_iova_range>(info, 72).nr_iovas);
        var range = StructBytes.Read<vfio_iova_range>(info, 88);
        Assert.Equal((0UL, ulong.MaxValue), (range.start, range.end));
    }

    [Fact]
    public void GetInfoIntoABufferShorterThanItsArgszFaults()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(-Errno.EFAULT, Type1Calls.GetInfo(h.Host, h.Container, 120, out _, 100));
        Assert.Equal(-Errno.EFAULT, h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_IOMMU_GET_INFO, new byte[12]));
    }
}
