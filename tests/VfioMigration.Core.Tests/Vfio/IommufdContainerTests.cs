using System;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Tests.Conformance;
using VfioMigration.Core.Vfio;
using Xunit;

namespace VfioMigration.Core.Tests.Vfio;

/// <summary>The container over the iommufd backend, on simulated hosts whose IOMMU can and cannot track dirty pages.</summary>
public class IommufdContainerTests
{
    private static (SimulatedKernel Kernel, VfioHost Host) Host(SimHostConfiguration c)
    {
        var kernel = new SimulatedKernel(c);
        kernel.Clock.UseManualTime();
        return (kernel, new VfioHost(kernel));
    }

    private static VfioContainer Iommufd(VfioHost host, params int[] groups)
    {
        var c = VfioContainer.Open(host, backend: VfioBackend.Iommufd);
        foreach (int g in groups) c.Attach(g);
        c.SetIommu();
        return c;
    }

    [Fact]
    public void OnADirtyTrackingIommuTheBitmapHoldsThePagesTheDeviceWrote()
    {
        var (kernel, host) = Host(IommufdConformanceTests.DirtyHost());
        using var c = Iommufd(host, 2);
        c.Map(0x100000, 2UL << 20);
        Assert.True(c.Info!.DirtyTracking);
        Assert.NotEqual(0u, c.HwptId);
        Assert.Null(c.DirtyTrackingFallback);
        c.StartDirtyTracking();

        kernel.Clock.Advance(TimeSpan.FromSeconds(1));
        var peek = c.GetDirtyBitmap(0x100000, 2UL << 20, noClear: true);
        var read = c.GetDirtyBitmap(0x100000, 2UL << 20);
        var again = c.GetDirtyBitmap(0x100000, 2UL << 20);

        Assert.Equal(DirtyScope.IommuHardware, read.Scope);
        Assert.InRange(read.DirtyPages, 1UL, 64UL);                   // 64 writes, some to the same page
        Assert.Equal(peek.DirtyPages, read.DirtyPages);                // NO_CLEAR left them for the next read
        Assert.Equal(0UL, again.DirtyPages);                           // the read cleared them
    }

    [Fact]
    public void ABitmapSpanningAGapReadsTheMappingsAndLeavesTheGapClean()
    {
        var (kernel, host) = Host(IommufdConformanceTests.DirtyHost());
        using var c = Iommufd(host, 2);
        c.Map(0x100000, 1UL << 20);
        c.Map(0x400000, 1UL << 20);
        c.StartDirtyTracking();
        kernel.Clock.Advance(TimeSpan.FromSeconds(4));

        var bitmap = c.GetDirtyBitmap(0x100000, 0x400000);

        Assert.True(bitmap.DirtyPages > 0);
        Assert.All(bitmap.EnumerateDirtyRanges(0), r => Assert.True(r.Iova.Value < 0x200000 || r.Iova.Value >= 0x400000, $"{r.Iova} is in the gap"));
    }

    [Fact]
    public void WhereTheIommuCannotTrackTheContainerSaysSoAndWhatTakesOver()
    {
        var (_, host) = Host(SimTopologies.LabIommufd());
        using var c = Iommufd(host, 2);

        Assert.False(c.Info!.DirtyTracking);
        Assert.Contains("SSADS", c.DirtyTrackingFallback);
        Assert.Contains("-Device", c.DirtyTrackingFallback);
        var e = Assert.Throws<VfioRuleException>(() => c.StartDirtyTracking());
        Assert.Equal("IommuNoDirtyTracking", e.RuleId);
        var hw = Assert.Single(c.Hardware);
        Assert.Equal(IommuHardwareType.IntelVtd, hw.Type);
        Assert.Equal(0xf00f4aUL, hw.VtdEcap);
        Assert.False(hw.ScalableMode);
        Assert.Equal(39, hw.AddressWidth);
    }

    [Fact]
    public void AnAmdIommuWithHdSupTracksAndItsEfrIsDecodedFromSysfs()
    {
        var (_, host) = Host(SimTopologies.LabIommufd(dirtyTracking: true, model: SimIommuModel.AmdVi));
        using var c = Iommufd(host, 2);

        var hw = Assert.Single(c.Hardware);
        Assert.Equal(IommuHardwareType.AmdVi, hw.Type);
        Assert.True(hw.HdSup);
        Assert.True(c.Info!.DirtyTracking);
    }

    [Fact]
    public void TheIovaRangesNarrowToTheIommusOnceTheDeviceIsAttached()
    {
        var (_, host) = Host(SimTopologies.LabIommufd());
        using var c = Iommufd(host, 2);

        Assert.Equal(new[] { (0x0UL, 0xfedfffffUL), (0xfef00000UL, 0x7fffffffffUL) }, c.Info!.IovaRanges.Select(r => (r.Start.Value, r.End.Value)));
        Assert.Equal(4096UL, c.Info.MinimumPageSize);
        var e = Assert.Throws<VfioRuleException>(() => c.Map(0xfee00000, 0x1000));
        Assert.Equal("MappingOutsideIovaRanges", e.RuleId);
    }

    [Fact]
    public void WhileBoundTheGroupCannotBeOpenedAndAfterCloseItCan()
    {
        var (_, host) = Host(SimTopologies.LabIommufd());
        var c = Iommufd(host, 2);
        var busy = Assert.Throws<VfioNativeException>(() => VfioContainer.Open(host).Attach(2));
        Assert.Equal(Errno.EBUSY, busy.Errno);

        c.Dispose();
        using var legacy = VfioContainer.Open(host);
        legacy.Attach(2);
        legacy.SetIommu();
    }

    [Fact]
    public void DevicesOfAnIommufdContainerAnswerThroughTheirCdev()
    {
        var (_, host) = Host(SimTopologies.LabIommufd());
        using var c = Iommufd(host, 7);
        var device = c.GetDevice(SimTopologies.LabMttyUuid);

        Assert.True(device.GetInfo().num_regions > 0);
        Assert.True(c.BoundDevices.Single().IsEmulated);
        Assert.Empty(c.Hardware);
    }

    [Fact]
    public void RemovingAMappingWhileTrackingReturnsItsDirtyPagesFirst()
    {
        var (kernel, host) = Host(IommufdConformanceTests.DirtyHost());
        using var c = Iommufd(host, 2);
        var m = c.Map(0x100000, 2UL << 20);
        c.StartDirtyTracking();
        kernel.Clock.Advance(TimeSpan.FromSeconds(1));

        var bitmap = c.Unmap(m, getDirtyBitmap: true);

        Assert.True(bitmap!.DirtyPages > 0);
        Assert.Empty(c.Mappings);
    }

    [Fact]
    public void ALegacyContainerRefusesNoClear()
    {
        var (_, host) = Host(SimTopologies.LabIommufd());
        using var c = VfioContainer.Open(host);
        c.Attach(2);
        c.SetIommu();
        c.Map(0x100000, 0x100000);
        c.StartDirtyTracking();

        var e = Assert.Throws<VfioRuleException>(() => c.GetDirtyBitmap(0x100000, 0x100000, noClear: true));
        Assert.Equal("NoClearUnsupported", e.RuleId);
    }

    [Fact]
    public void AutoChoosesIommufdWhereTheHostHasIt()
    {
        Assert.Equal(VfioBackend.Iommufd, VfioContainer.ResolveBackend(Host(SimTopologies.LabIommufd()).Host, VfioBackendChoice.Auto));
        Assert.Equal(VfioBackend.Legacy, VfioContainer.ResolveBackend(Host(SimTopologies.Lab()).Host, VfioBackendChoice.Auto));
        var e = Assert.Throws<VfioRuleException>(() => VfioContainer.Open(Host(SimTopologies.Lab()).Host, backend: VfioBackend.Iommufd));
        Assert.Equal("IommufdNotPresent", e.RuleId);
    }
}
