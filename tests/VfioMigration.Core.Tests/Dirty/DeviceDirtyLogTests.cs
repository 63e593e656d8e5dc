using System;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using VfioMigration.Core.Vfio;
using Xunit;

namespace VfioMigration.Core.Tests.Dirty;

/// <summary>Start-/Stop-DirtyTracking -Device and Get-DirtyBitmap -Device underneath: a device's own DMA log.</summary>
public class DeviceDirtyLogTests
{
    private const string Nic = "0000:00:06.0";

    private static (SimulatedKernel Kernel, VfioContainer Container, VfioDevice Device) Open(bool iommufdDriver, double pagesPerSecond = 0)
    {
        var device = SimDeviceExamples.V2PciDevice(Nic);
        device.Workload.GuestDirtyPagesPerSecond = pagesPerSecond;
        var config = SimDeviceExamples.Host(10, device);
        config.IommufdDriver = iommufdDriver;
        var kernel = new SimulatedKernel(config);
        kernel.Clock.UseManualTime();
        var c = VfioContainer.Open(new VfioHost(kernel));
        c.Attach(10);
        c.SetIommu();
        return (kernel, c, c.GetDevice(Nic));
    }

    [Fact]
    public void TheLogHoldsOnlyThePagesTheDeviceWroteWhileTheContainerReportsEveryMappedPage()
    {
        var (kernel, c, device) = Open(iommufdDriver: true, pagesPerSecond: 50);
        using var _ = c;
        c.Map(0x10000000, 4 << 20);
        c.StartDirtyTracking();
        var info = DeviceDirtyLog.Start(device, c);
        Assert.Equal((4096UL, 1), (info.PageSize, info.Ranges.Count));
        kernel.Clock.Advance(TimeSpan.FromSeconds(1));
        var log = DeviceDirtyLog.Read(device);
        Assert.Equal(DirtyScope.DeviceLog, log.Scope);
        Assert.InRange(log.DirtyPages, 1UL, 50UL);   // 50 writes; a page written twice is one bit
        Assert.Equal(1024UL, c.GetDirtyBitmap(0x10000000, 4 << 20).DirtyPages);   // behind the IOMMU: everything
        Assert.Equal(0UL, DeviceDirtyLog.Read(device).DirtyPages);                // a report clears the log
        DeviceDirtyLog.Stop(device);
        Assert.Equal("DeviceLogNotStarted", Assert.Throws<VfioRuleException>(() => DeviceDirtyLog.Read(device)).RuleId);
    }

    [Fact]
    public void OnAKernelWithoutIommufdDriverTheReportIsAModuleErrorThatSaysWhyAndStartAndStopWork()
    {
        var (_, c, device) = Open(iommufdDriver: false);
        using var _ = c;
        c.Map(0x10000000, 1 << 20);
        DeviceDirtyLog.Start(device, c);
        var e = Assert.Throws<VfioRuleException>(() => DeviceDirtyLog.Read(device));
        Assert.Equal("DeviceLogReportUnsupported", e.RuleId);
        Assert.Contains("CONFIG_IOMMUFD_DRIVER", e.Message);
        DeviceDirtyLog.Stop(device);
    }

    [Fact]
    public void AdjacentMappingsAreOneRangeAndMoreThanTheKernelsLimitAreCombinedAtTheirSmallestGaps()
    {
        Assert.Equal(new[] { (0x1000UL, 0x3000UL) }, DeviceDirtyLog.RangesFor(new[] { (0x1000UL, 0x1000UL), (0x2000UL, 0x2000UL) }));
        // 300 mappings of one page, gaps of one page, except a wider gap every 10: 256 ranges remain.
        var mappings = Enumerable.Range(0, 300).Select(i => ((ulong)(i * 0x2000 + (i / 10) * 0x100000), 0x1000UL)).ToList();
        var ranges = DeviceDirtyLog.RangesFor(mappings);
        Assert.Equal(DeviceDirtyLog.MaxRanges, ranges.Count);
        Assert.All(mappings, m => Assert.Contains(ranges, r => m.Item1 >= r.Iova && m.Item1 + m.Item2 <= r.Iova + r.Length));
        // Only the narrow gaps were closed: no range spans a 1 MiB gap.
        Assert.All(ranges, r => Assert.True(r.Length < 0x100000, $"0x{r.Iova:x}+0x{r.Length:x} closed a wide gap"));
    }

    [Fact]
    public void ADeviceWithoutItsOwnLogIsToldToUseTheContainer()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        using var c = VfioContainer.Open(new VfioHost(kernel));
        c.Attach(2);
        c.SetIommu();
        c.Map(0x10000000, 1 << 20);
        var e = Assert.Throws<VfioRuleException>(() => DeviceDirtyLog.Start(c.GetDevice("0000:00:02.0"), c));
        Assert.Equal("NoDeviceDmaLogging", e.RuleId);
    }
}
