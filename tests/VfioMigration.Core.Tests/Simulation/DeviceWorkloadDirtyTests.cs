using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using VfioMigration.Core.Tests.Simulation.Devices;
using VfioMigration.Core.Tests.Simulation.Type1;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation;

/// <summary>
/// A device workload seen through the dirty-page interfaces a VMM reads, with the host's clock advanced by
/// hand: an mdev's writes arrive as pinned pages in the container's dirty bitmap (type1 pinned-page scope),
/// and a v2 device's writes arrive in its own DMA log (VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT).
/// </summary>
public class DeviceWorkloadDirtyTests
{
    private const ulong A = 0x10000000, ASize = 0x200000; // 512 pages
    private const ulong Page = Type1Harness.Page;

    /// <summary>The lab's host with its mtty writing <paramref name="pagesPerSecond"/> guest pages per simulated second.</summary>
    private static Type1Harness MdevOnlyContainer(double pagesPerSecond)
    {
        var config = SimTopologies.Lab();
        config.Groups.Single(g => g.Number == Type1Harness.MdevGroup).Devices.Single().Workload.GuestDirtyPagesPerSecond = pagesPerSecond;
        var h = Type1Harness.With(config, Type1Harness.MdevGroup);
        h.Kernel.Clock.UseManualTime();
        Assert.Equal(0, h.Map(A, ASize));
        Assert.Equal(0, h.Start());
        return h;
    }

    private static SafeFd OpenMtty(Type1Harness h)
    {
        int fd = h.Host.TryIoctl(h.Group(Type1Harness.MdevGroup), VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString(SimTopologies.LabMttyUuid));
        Assert.True(fd >= 0, $"GET_DEVICE_FD: {Errno.Name(-fd)}");
        return h.Host.Adopt(fd, SimTopologies.LabMttyUuid);
    }


    /// <summary>The device's pinned pages as page numbers relative to A, in order.</summary>
    private static List<long> Pinned(Type1Harness h) =>
        h.Kernel.FindDevice(SimTopologies.LabMttyUuid)!.PinnedPages.Select(p => (long)((p - A) / Page)).Order().ToList();

    private static void Advance(SimulatedKernel kernel, double seconds) => kernel.Clock.Advance(TimeSpan.FromSeconds(seconds));

    [Fact]
    public void AnMdevsWorkloadPinsPagesThatReadDirtyOnEveryReadOfAnMdevOnlyContainer()
    {
        using var h = MdevOnlyContainer(pagesPerSecond: 8);
        using var mtty = OpenMtty(h);
        Assert.Empty(h.Dirty(A, ASize)); // no simulated time has passed: nothing written, nothing pinned

        Advance(h.Kernel, 1);
        var first = h.Dirty(A, ASize);
        Assert.InRange(first.Count, 1, 8); // 8 writes, a page written twice is pinned once
        Assert.Equal(Pinned(h), first);    // only what the device pinned: the container has no IOMMU-backed group
        // vfio_iova_dirty_bitmap re-populates the bitmap with the pinned pages after every read.
        Assert.Equal(first, h.Dirty(A, ASize));
        Assert.Equal(first, h.Dirty(A, ASize));

        Advance(h.Kernel, 2);
        var later = h.Dirty(A, ASize);
        Assert.Equal(Pinned(h), later);
        Assert.True(later.Count > first.Count, $"{later.Count} pages after 3 s, {first.Count} after 1 s");
        Assert.Superset(first.ToHashSet(), later.ToHashSet());
        Assert.True(later.Count < (int)(ASize / Page), "an mdev-only container never reads all-dirty");
    }

    [Fact]
    public void AStoppedMdevPinsNoMoreButItsPinnedPagesStayDirtyUntilItsLastCloseUnpinsThem()
    {
        using var h = MdevOnlyContainer(pagesPerSecond: 8);
        var mtty = OpenMtty(h);
        Advance(h.Kernel, 1);
        var pinned = h.Dirty(A, ASize);
        Assert.NotEmpty(pinned);

        var stop = new byte[16];
        StructBytes.Write(stop, new vfio_device_feature { argsz = 16, flags = VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | VFIO_DEVICE_FEATURE_SET });
        StructBytes.Write(stop, new vfio_device_feature_mig_state { device_state = VFIO_DEVICE_STATE_STOP, data_fd = -1 }, 8);
        Assert.Equal(0, h.Host.TryIoctl(mtty, VfioIoctl.VFIO_DEVICE_FEATURE, stop));
        Advance(h.Kernel, 5);
        Assert.Equal(pinned, h.Dirty(A, ASize)); // no new pages, the pinned ones still dirty

        // The last close unpins (close_device). An unpinned page is still in the bitmap the last read
        // re-populated, so it is reported once more; the next re-populate leaves it out.
        mtty.Dispose();
        Assert.Empty(h.Kernel.FindDevice(SimTopologies.LabMttyUuid)!.PinnedPages);
        Assert.Equal(pinned, h.Dirty(A, ASize));
        Assert.Empty(h.Dirty(A, ASize));
    }

    // ---------------------------------------------------------------------------------------------
    // A v2 device with DMA logging

    private const string Logger = "0000:00:06.0";

    private static DeviceHarness LoggingDevice(double pagesPerSecond, int seed = 1)
    {
        var device = SimDeviceExamples.V2PciDevice(Logger);
        device.Workload.GuestDirtyPagesPerSecond = pagesPerSecond;
        device.Workload.Seed = seed;
        var h = DeviceHarness.Open(SimDeviceExamples.Host(10, device), Logger);
        using var ranges = new NativeBuffer(16);
        StructBytes.Write(ranges.Span, new vfio_device_feature_dma_logging_range { iova = A, length = ASize });
        var (rc, _) = h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET, 24, b => StructBytes.Write(b,
            new vfio_device_feature_dma_logging_control { page_size = Page, num_ranges = 1, ranges = ranges.Address }, 8));
        Assert.Equal(0, rc);
        return h;
    }

    /// <summary>DMA_LOGGING_REPORT over A at 4 KiB into a zeroed bitmap: the dirty page numbers (read and cleared).</summary>
    private static List<long> Report(DeviceHarness h)
    {
        using var bitmap = new NativeBuffer((long)(ASize / Page / 8));
        var (rc, _) = h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, VFIO_DEVICE_FEATURE_GET, 32, b => StructBytes.Write(b,
            new vfio_device_feature_dma_logging_report { iova = A, length = ASize, page_size = Page, bitmap = bitmap.Address }, 8));
        Assert.Equal(0, rc);
        return Type1Harness.SetBits(bitmap.Span, (long)(ASize / Page));
    }

    [Fact]
    public void ADmaLoggingDevicesLogReportsThePagesItsWorkloadWritesAsTheClockAdvances()
    {
        using var h = LoggingDevice(pagesPerSecond: 20);
        Assert.Empty(Report(h)); // tracking started, no simulated time yet

        var seen = new HashSet<long>();
        for (int second = 1; second <= 3; second++)
        {
            h.Advance(1);
            var pages = Report(h);
            Assert.InRange(pages.Count, 1, 20); // this second's 20 writes, a page written twice counts once
            seen.UnionWith(pages);
            Assert.Empty(Report(h));            // the report read and cleared them; no time passed since
        }
        Assert.True(seen.Count > 20, $"{seen.Count} distinct pages in 3 s of 20 writes a second");

        // The same device (same seed, same running time) writes the same pages, however it is sampled.
        using var twin = LoggingDevice(pagesPerSecond: 20);
        twin.Advance(3);
        Assert.Equal(seen.Order().ToList(), Report(twin));
    }

    [Fact]
    public void ADmaLoggingDeviceThatStopsRunningLogsNothingMore()
    {
        using var h = LoggingDevice(pagesPerSecond: 20);
        h.Advance(1);
        Assert.NotEmpty(Report(h));
        h.MoveTo(VFIO_DEVICE_STATE_STOP);
        h.Advance(5);
        Assert.Empty(Report(h));
        h.MoveTo(VFIO_DEVICE_STATE_RUNNING);
        h.Advance(1);
        Assert.NotEmpty(Report(h));
    }
}
