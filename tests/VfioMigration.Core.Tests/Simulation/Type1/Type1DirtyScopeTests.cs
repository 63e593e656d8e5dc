using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>What reads dirty (kernel-interface.md c.3): the IOMMU-backed rule, pinned-page scope, promotion and demotion.</summary>
public class Type1DirtyScopeTests
{
    private static List<long> Range(long from, long count) => Enumerable.Range((int)from, (int)count).Select(i => (long)i).ToList();

    [Fact]
    public void AnIommuBackedGroupMakesEveryMappedPageDirtyOnEveryRead()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        for (int read = 0; read < 3; read++) Assert.Equal(Range(0, 16), h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void AnMdevOnlyContainerReportsOnlyPinnedAndWrittenPages()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Empty(h.Dirty(0x100000, 0x10000));                       // mtty pins nothing: all zero (kernel-interface.md lab 7.3)
        Assert.Equal(0, h.Sim.PinPages(0x102000, 2));
        Assert.Equal(0, h.Sim.DmaWrite(0x10a800, 0x1000));               // straddles pages 10 and 11
        Assert.Equal(new List<long> { 2, 3, 10, 11 }, h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void PinnedPagesStayDirtyAfterAReadWhileWrittenPagesAreCleared()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.PinPages(0x105000, 1));
        Assert.Equal(0, h.Sim.DmaWrite(0x107000, 1));
        Assert.Equal(new List<long> { 5, 7 }, h.Dirty(0x100000, 0x10000));
        Assert.Equal(new List<long> { 5 }, h.Dirty(0x100000, 0x10000));
        Assert.Equal(new List<long> { 5 }, h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void APageUnpinnedBeforeTheReadIsReportedOnceThenClean()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.PinPages(0x104000, 1));
        h.Sim.UnpinPages(0x104000, 1);
        Assert.Equal(new List<long> { 4 }, h.Dirty(0x100000, 0x10000));
        Assert.Empty(h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void PagesPinnedBeforeStartAreDirtyFromStartButEarlierWritesAreNot()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Sim.PinPages(0x101000, 1));
        Assert.Equal(0, h.Sim.DmaWrite(0x109000, 1));                    // nobody tracks yet
        Assert.Equal(0, h.Start());
        Assert.Equal(new List<long> { 1 }, h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void AMixedContainerIsAllDirtyWhileItsIommuBackedGroupIsAttached()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Equal(16, h.Dirty(0x100000, 0x10000).Count);
        Assert.Equal(16, h.Dirty(0x100000, 0x10000).Count);
    }

    [Fact]
    public void WhenTheLastIommuBackedGroupLeavesExistingBitmapsAreRefilledFullyDirtyOnce()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Sim.PinPages(0x103000, 1));

        Assert.Equal(0, h.Detach(IommuGroup));                           // promotion to pinned-page scope
        Assert.Equal(0, h.Sim.Iommu!.NumNonPinnedGroups);
        Assert.Equal(Range(0, 16), h.Dirty(0x100000, 0x10000));          // nothing the departed group wrote is lost
        Assert.Equal(new List<long> { 3 }, h.Dirty(0x100000, 0x10000));  // from now on: pinned pages only
    }

    [Fact]
    public void EveryIommuBackedGroupLeavingWhileTrackingRefillsTheBitmaps()
    {
        // vfio_iommu_type1_detach_group refills on every non-pinned group's departure, even if another remains.
        using var h = Type1Harness.With(IommuGroup, OtherIommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Equal(0, h.Detach(OtherIommuGroup));
        Assert.Equal(1, h.Sim.Iommu!.NumNonPinnedGroups);
        Assert.Equal(16, h.Dirty(0x100000, 0x10000).Count);
        Assert.Equal(0, h.Detach(IommuGroup));
        Assert.Equal(16, h.Dirty(0x100000, 0x10000).Count);
        Assert.Empty(h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void WithoutTrackingNoRefillIsKeptForALaterStart()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Detach(IommuGroup));
        Assert.Equal(0, h.Start());
        Assert.Empty(h.Dirty(0x100000, 0x10000));
    }

    [Fact]
    public void AnIommuBackedGroupJoiningAnMdevOnlyContainerDemotesItAndMapsItsMappings()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Start());
        Assert.Empty(h.Dirty(0x100000, 0x10000));
        Assert.Equal(0, h.Attach(IommuGroup));                           // vfio_iommu_replay pins and maps A
        Assert.True(h.Sim.Iommu!.Mappings[0].IommuMapped);
        Assert.Equal(16, h.Dirty(0x100000, 0x10000).Count);
        Assert.Equal(0x40201000UL, h.Sim.Iommu.PgsizeBitmap);
    }

    [Fact]
    public void AnIommuBackedGroupCannotJoinWhenAMappingSitsInItsReservedRegionOrBeyondItsAperture()
    {
        using (var h = Type1Harness.With(MdevGroup))
        {
            Assert.Equal(0, h.Map(0xfee00000, 0x1000));                  // the MSI window of the VT-d
            Assert.Equal(-Errno.EINVAL, h.Attach(IommuGroup));
            Assert.Single(h.Sim.AttachedGroups);
        }
        using (var h = Type1Harness.With(MdevGroup))
        {
            Assert.Equal(0, h.Map(0x10000000000, 0x1000));               // above the 39-bit address width
            Assert.Equal(-Errno.EFAULT, h.Attach(IommuGroup));
            Assert.False(h.Sim.Iommu!.HasDomain);
        }
    }

    [Fact]
    public void MappingsOutliveTheLastIommuBackedGroupWhileAnMdevGroupRemains()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x10000));
        Assert.Equal(0, h.Detach(IommuGroup));
        var mapping = Assert.Single(h.Sim.Iommu!.Mappings);
        Assert.False(mapping.IommuMapped);
        Assert.Equal(0, h.Map(0x10000000000, 0x1000));                   // no aperture any more: [0, 2^64 - 1]
    }
}
