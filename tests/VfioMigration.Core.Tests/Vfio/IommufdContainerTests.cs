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
    public void AnIommufdBitmapCarriesItsMappingsSoAHeatmapShowsTheGap()
    {
        var (kernel, host) = Host(IommufdConformanceTests.DirtyHost());
        using var c = Iommufd(host, 2);
        c.Map(0x100000, 1UL << 20);
        c.Map(0x400000, 1UL << 20);
        c.StartDirtyTracking();

        var bitmap = c.GetDirtyBitmap(0x100000, 0x400000);

        Assert.Equal(new[] { new MappedRange(0x100000, 1UL << 20), new MappedRange(0x400000, 1UL << 20) }, bitmap.GetMappedRanges());
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

/// <summary>The iommufd keys of the simulated host's file, and what Test-VfioMigration says of an iommufd container.</summary>
public class IommufdConfigurationAndPreflightTests
{
    private static System.Collections.Hashtable Host(params (string Key, object Value)[] keys)
    {
        var device = new System.Collections.Hashtable { ["Name"] = "0000:00:02.0", ["Bus"] = "pci" };
        var group = new System.Collections.Hashtable { ["Group"] = 2, ["Devices"] = new object[] { device } };
        var h = new System.Collections.Hashtable { ["Groups"] = new object[] { group } };
        foreach (var (k, v) in keys) h[k] = v;
        return h;
    }

    [Fact]
    public void TheIommufdKeysReadFromTheFileAndPickTheRegisters()
    {
        var c = SimHostConfiguration.FromDictionary(Host(("Iommufd", true), ("IommuModel", "amdvi"), ("IommuDirtyTracking", true)));
        Assert.True(c.Iommufd);
        Assert.Equal(SimIommuModel.AmdVi, c.IommuModel);
        Assert.Equal(SimHostConfiguration.QemuAmdEfr | (1UL << 52), c.EffectiveAmdEfr);
        var vtd = SimHostConfiguration.FromDictionary(Host(("VtdEcap", "0x880000f00f4a")));
        Assert.Equal(0x880000f00f4aUL, vtd.EffectiveVtdEcap);
    }

    [Fact]
    public void RegistersThatDisagreeWithIommuDirtyTrackingAreAnError()
    {
        var e = Assert.Throws<FormatException>(() => SimHostConfiguration.FromDictionary(Host(("IommuDirtyTracking", true), ("VtdEcap", "0xf00f4a"))));
        Assert.Contains("disagrees", e.Message);
        Assert.Contains("Unknown key 'Iommufdd'", Assert.Throws<FormatException>(() => SimHostConfiguration.FromDictionary(Host(("Iommufdd", true)))).Message);
    }

    [Fact]
    public void IovaRangesAskAgainWhenTheKernelSaysEmsgsize()
    {
        // Six usable ranges behind the IOMMU: more than the four the first IOMMU_IOAS_IOVA_RANGES makes room for.
        var config = SimTopologies.LabIommufd();
        config.IovaRanges = Enumerable.Range(0, 6).Select(i => ((ulong)i << 32, ((ulong)i << 32) + 0xfffffff)).ToList();
        var kernel = new SimulatedKernel(config);
        var calls = new System.Collections.Generic.List<SyscallRecord>();
        var host = new VfioHost(kernel) { Trace = calls.Add };
        using var c = VfioContainer.Open(host, backend: VfioBackend.Iommufd);
        c.Attach(2);
        c.SetIommu();

        Assert.Equal(6, c.Info!.IovaRanges.Count);
        Assert.Contains(calls, r => r.Operation.Contains("IOMMU_IOAS_IOVA_RANGES", StringComparison.Ordinal) && r.Result == -Errno.EMSGSIZE);
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void TestVfioMigrationSaysNoDirtyTrackingUnlessTheDeviceLogsItsDma(bool dmaLogging, bool expectNoDirtyTracking)
    {
        var config = SimTopologies.LabIommufd();
        config.AllDevices.First(d => d.Name == SimTopologies.LabMttyUuid).DmaLogging = dmaLogging;
        var host = new VfioHost(new SimulatedKernel(config));
        using var c = VfioContainer.Open(host, backend: VfioBackend.Iommufd);
        c.Attach(7);
        c.SetIommu();

        var report = Core.Migration.MigrationPreflight.Check(host, new[] { c }, SimTopologies.LabMttyUuid, null);

        var found = report.Incompatibilities.Where(i => i.MessageId == "NoDirtyTracking").ToList();
        Assert.Equal(expectNoDirtyTracking, found.Count == 1);
        if (expectNoDirtyTracking) Assert.Contains("cannot track dirty pages", found[0].Message);
    }
}
