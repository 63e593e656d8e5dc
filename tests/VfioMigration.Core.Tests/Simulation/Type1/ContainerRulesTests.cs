using VfioMigration.Core.Conformance;
using VfioMigration.Core.Native;
using Xunit;
using static VfioMigration.Core.Tests.Simulation.Type1.Type1Harness;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>The container's own rules (drivers/vfio/container.c), kernel-interface.md lab 9.</summary>
public class ContainerRulesTests
{
    [Fact]
    public void GetApiVersionIsZero()
    {
        using var h = new Type1Harness();
        Assert.Equal(0, h.Host.TryIoctlValue(h.Container, VfioIoctl.VFIO_GET_API_VERSION, 0));
    }

    [Fact]
    public void CheckExtensionBeforeSetIommuPollsType1WithoutState()
    {
        using var h = new Type1Harness();
        // kernel-interface.md lab 9: TYPE1=1, TYPE1v2=1, NESTING=1, UNMAP_ALL=1, everything else 0 (UPDATE_VADDR needs a driver instance).
        var answers = new int[11];
        for (uint ext = 1; ext <= 10; ext++) answers[ext] = h.CheckExtension(ext);
        Assert.Equal(new[] { 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0 }, answers);
        Assert.Equal(0, h.CheckExtension(0));
        Assert.Equal(0, h.CheckExtension(11));
    }

    [Fact]
    public void CheckExtensionAfterSetIommuAsksTheDriverWithItsState()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(1, h.CheckExtension(VfioConstants.VFIO_TYPE1v2_IOMMU));
        Assert.Equal(1, h.CheckExtension(VfioConstants.VFIO_UPDATE_VADDR));   // no mdev in the container
        Assert.Equal(0, h.CheckExtension(VfioConstants.VFIO_DMA_CC_IOMMU));   // the VT-d domain does not enforce coherency
        Assert.Equal(0, h.CheckExtension(VfioConstants.VFIO_NOIOMMU_IOMMU));

        Assert.Equal(0, h.Attach(MdevGroup));
        Assert.Equal(0, h.CheckExtension(VfioConstants.VFIO_UPDATE_VADDR));   // "Disable this feature if mdevs are present"
    }

    [Fact]
    public void CheckExtensionDmaCcIsVacuouslyTrueWithoutAnIommuDomain()
    {
        using var h = Type1Harness.With(MdevGroup);
        Assert.Equal(1, h.CheckExtension(VfioConstants.VFIO_DMA_CC_IOMMU));
        Assert.Equal(0, h.CheckExtension(VfioConstants.VFIO_UPDATE_VADDR));
    }

    [Fact]
    public void SetIommuWithoutAGroupIsEinval()
    {
        using var h = new Type1Harness();
        Assert.Equal(-Errno.EINVAL, h.SetIommu());
    }

    [Fact]
    public void SetIommuASecondTimeIsEinvalNotEbusy()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(-Errno.EINVAL, h.SetIommu());
        Assert.Equal(-Errno.EINVAL, h.SetIommu(VfioConstants.VFIO_TYPE1_IOMMU));
    }

    [Theory]
    [InlineData(42UL, Errno.ENODEV)]
    [InlineData((ulong)VfioConstants.VFIO_SPAPR_TCE_IOMMU, Errno.ENODEV)]
    [InlineData((ulong)VfioConstants.VFIO_NOIOMMU_IOMMU, Errno.ENODEV)]
    [InlineData((ulong)VfioConstants.VFIO_UPDATE_VADDR, Errno.ENODEV)]   // CHECK_EXTENSION(10) is 0 without a driver instance
    [InlineData((ulong)VfioConstants.VFIO_UNMAP_ALL, Errno.EINVAL)]      // claimed by CHECK_EXTENSION, refused by type1's open()
    public void SetIommuOfATypeNoDriverOpensFails(ulong type, int errno)
    {
        using var h = new Type1Harness();
        Assert.Equal(0, h.Attach(IommuGroup));
        Assert.Equal(-errno, h.SetIommu(type));
        Assert.False(h.Sim.HasIommuDriver);
        Assert.Equal(0, h.SetIommu());                                    // the container is still free to choose
    }

    [Fact]
    public void SetIommuNestingNeedsAnIommuThatNests()
    {
        // iommu_enable_nesting: VT-d has no enable_nesting op, so a VT-d group cannot join a nesting container.
        using (var h = new Type1Harness())
        {
            Assert.Equal(0, h.Attach(IommuGroup));
            Assert.Equal(-Errno.EINVAL, h.SetIommu(VfioConstants.VFIO_TYPE1_NESTING_IOMMU));
        }
        using (var h = Type1Harness.WithType(VfioConstants.VFIO_TYPE1_NESTING_IOMMU, null, MdevGroup))
        {
            Assert.Equal(-Errno.EINVAL, h.Attach(IommuGroup));
            Assert.True(h.Sim.Iommu!.V2);
        }
    }

    [Fact]
    public void Type1IoctlsBeforeSetIommuAreEinval()
    {
        using var h = new Type1Harness();
        Assert.Equal(0, h.Attach(IommuGroup));
        Assert.Equal(-Errno.EINVAL, Type1Calls.GetInfo(h.Host, h.Container, 24, out _));
        Assert.Equal(-Errno.EINVAL, h.Map(0x100000, 0x1000));
        Assert.Equal(-Errno.EINVAL, h.Unmap(0x100000, 0x1000));
        Assert.Equal(-Errno.EINVAL, h.Start());
        // Any request at all: vfio_fops_unl_ioctl has no driver to pass it to.
        Assert.Equal(-Errno.EINVAL, h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_GROUP_GET_STATUS, new byte[8]));
    }

    [Fact]
    public void UnknownIoctlsAfterSetIommuAreEnotty()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(-Errno.ENOTTY, h.Host.TryIoctl(h.Container, VfioIoctl.VFIO_GROUP_GET_STATUS, new byte[8]));
        Assert.Equal(-Errno.ENOTTY, h.Host.TryIoctlValue(h.Container, VfioIoctl.VFIO_DEVICE_RESET, 0));
    }

    [Fact]
    public void StructIoctlsGivenANumberFaultExceptDirtyPagesOnAV1Container()
    {
        using (var h = Type1Harness.With(IommuGroup))
        {
            Assert.Equal(-Errno.EFAULT, h.Host.TryIoctlValue(h.Container, VfioIoctl.VFIO_IOMMU_GET_INFO, 0));
            Assert.Equal(-Errno.EFAULT, h.Host.TryIoctlValue(h.Container, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, 0));
        }
        using (var h = Type1Harness.WithType(VfioConstants.VFIO_TYPE1_IOMMU, null, IommuGroup))
            Assert.Equal(-Errno.EACCES, h.Host.TryIoctlValue(h.Container, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, 0));
    }

    [Fact]
    public void GroupsAttachingToAContainerWithADriverJoinItsDriver()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x200000));
        Assert.Equal(0, h.Attach(OtherIommuGroup));
        Assert.Equal(0, h.Attach(MdevGroup));
        Assert.Equal(3, h.Sim.AttachedGroups.Count);
        Assert.Equal(2, h.Sim.Iommu!.NumNonPinnedGroups);                 // the mdev group joins in pinned-page scope
        Assert.True(h.Sim.Iommu.HasEmulated);

        var status = StructBytes.Buffer(new vfio_group_status { argsz = 8 });
        Assert.Equal(0, h.Host.TryIoctl(h.Group(MdevGroup), VfioIoctl.VFIO_GROUP_GET_STATUS, status));
        Assert.Equal(VfioConstants.VFIO_GROUP_FLAGS_VIABLE | VfioConstants.VFIO_GROUP_FLAGS_CONTAINER_SET, StructBytes.Read<vfio_group_status>(status).flags);
        Assert.Single(h.Sim.MappedRanges);
    }

    [Fact]
    public void DetachingTheLastGroupRemovesTheDriverAndEveryMapping()
    {
        using var h = Type1Harness.With(IommuGroup, MdevGroup);
        Assert.Equal(0, h.Map(0x100000, 0x200000));
        Assert.Equal(0, h.Start());

        Assert.Equal(0, h.Detach(IommuGroup));
        Assert.True(h.Sim.HasIommuDriver);                                // the mdev group still holds it
        Assert.Single(h.Sim.MappedRanges);

        Assert.Equal(0, h.Detach(MdevGroup));
        Assert.False(h.Sim.HasIommuDriver);
        Assert.Empty(h.Sim.MappedRanges);
        Assert.Equal(-Errno.EINVAL, Type1Calls.GetInfo(h.Host, h.Container, 24, out _));
        Assert.Equal(-Errno.EINVAL, h.SetIommu());

        // A new driver starts empty: the same IOVA maps again, tracking is off, every entry is available.
        Assert.Equal(0, h.Attach(IommuGroup));
        Assert.Equal(0, h.SetIommu());
        Assert.Equal(0, h.Map(0x100000, 0x200000));
        Assert.False(h.Sim.Iommu!.DirtyPageTracking);
        Assert.Equal(VfioConstants.DMA_ENTRY_LIMIT - 1, h.Sim.Iommu.DmaAvail);
    }

    [Fact]
    public void ClosingTheContainerDescriptorKeepsItsGroupsAttached()
    {
        using var h = new Type1Harness();
        Assert.Equal(0, h.Attach(IommuGroup));
        Assert.Equal(0, h.SetIommu());
        var sim = h.Sim;
        h.Container.Dispose();

        var status = StructBytes.Buffer(new vfio_group_status { argsz = 8 });
        Assert.Equal(0, h.Host.TryIoctl(h.Group(IommuGroup), VfioIoctl.VFIO_GROUP_GET_STATUS, status));
        Assert.Equal(VfioConstants.VFIO_GROUP_FLAGS_VIABLE | VfioConstants.VFIO_GROUP_FLAGS_CONTAINER_SET, StructBytes.Read<vfio_group_status>(status).flags);
        Assert.True(sim.HasIommuDriver);

        Assert.Equal(0, h.Detach(IommuGroup));
        Assert.False(sim.HasIommuDriver);
    }

    [Fact]
    public void ClosingTheLastGroupFileDetachesItAndReleasesTheDriver()
    {
        using var h = Type1Harness.With(IommuGroup);
        Assert.Equal(0, h.Map(0x100000, 0x1000));
        h.Group(IommuGroup).Dispose();
        Assert.False(h.Sim.HasIommuDriver);
        Assert.Empty(h.Sim.MappedRanges);
    }
}
