using System;
using System.Buffers.Binary;
using System.Numerics;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>Device DMA logging: vfio_main.c's START/REPORT checks and a tracking driver's log (mlx5's rules).</summary>
public class DmaLoggingTests
{
    private const uint SET = VFIO_DEVICE_FEATURE_SET, GET = VFIO_DEVICE_FEATURE_GET;
    private const ulong Base = 0x10000000;

    private static DeviceHarness Logger(double pagesPerSecond = 0)
    {
        var device = SimDeviceExamples.V2PciDevice();
        device.Workload.GuestDirtyPagesPerSecond = pagesPerSecond;
        return DeviceHarness.Open(SimDeviceExamples.Host(10, device), "0000:00:06.0");
    }

    /// <summary>DMA_LOGGING_START over the ranges: the result and the page size the device chose.</summary>
    private static (int Rc, ulong PageSize) Start(DeviceHarness h, ulong pageSize, params (ulong Iova, ulong Length)[] ranges) =>
        Start(h, pageSize, (uint)ranges.Length, ranges);

    private static (int Rc, ulong PageSize) Start(DeviceHarness h, ulong pageSize, uint count, (ulong Iova, ulong Length)[] ranges, bool badPointer = false)
    {
        using var array = new NativeBuffer(Math.Max(1, ranges.Length) * 16);
        for (int i = 0; i < ranges.Length; i++)
            StructBytes.Write(array.Span, new vfio_device_feature_dma_logging_range { iova = ranges[i].Iova, length = ranges[i].Length }, i * 16);
        var (rc, buffer) = h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, SET, 24, b => StructBytes.Write(b,
            new vfio_device_feature_dma_logging_control { page_size = pageSize, num_ranges = count, ranges = badPointer ? 0 : array.Address }, 8));
        return (rc, StructBytes.Read<vfio_device_feature_dma_logging_control>(buffer, 8).page_size);
    }

    private static int Report(DeviceHarness h, ulong iova, ulong length, ulong pageSize, NativeBuffer? bitmap) =>
        h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, GET, 32, b => StructBytes.Write(b,
            new vfio_device_feature_dma_logging_report { iova = iova, length = length, page_size = pageSize, bitmap = bitmap?.Address ?? 0 }, 8)).Rc;

    private static int Bits(NativeBuffer bitmap)
    {
        int n = 0;
        for (int i = 0; i < bitmap.Length; i += 8) n += BitOperations.PopCount(BinaryPrimitives.ReadUInt64LittleEndian(bitmap.Slice(i, 8)));
        return n;
    }

    [Fact]
    public void StartRefusesNoRangesAndMoreThanTheCoreGuarantees()
    {
        using var h = Logger();
        Assert.Equal(-Errno.EINVAL, Start(h, 4096).Rc);
        var many = new (ulong, ulong)[LOG_MAX_RANGES + 1];
        for (int i = 0; i < many.Length; i++) many[i] = (Base + (ulong)i * 0x2000, 0x1000);
        Assert.Equal(-Errno.E2BIG, Start(h, 4096, many).Rc);
        Assert.Equal(0, Start(h, 4096, many[..(int)LOG_MAX_RANGES]).Rc);
    }

    [Fact]
    public void StartChecksAlignmentOverflowOverlapAndTheRangesPointer()
    {
        using var h = Logger();
        Assert.Equal(-Errno.EINVAL, Start(h, 4096, (Base + 0x800, 0x1000)).Rc);
        Assert.Equal(-Errno.EINVAL, Start(h, 4096, (Base, 0x1800)).Rc);
        Assert.Equal(-Errno.EINVAL, Start(h, 0x200000, (Base + 0x1000, 0x200000)).Rc);
        Assert.Equal(-Errno.EOVERFLOW, Start(h, 4096, (0xFFFFFFFFFFFFF000, 0x2000)).Rc);
        Assert.Equal(-Errno.EINVAL, Start(h, 4096, (Base, 0x4000), (Base + 0x3000, 0x1000)).Rc);
        Assert.Equal(-Errno.EFAULT, Start(h, 4096, 1, new[] { (Base, 0x1000ul) }, badPointer: true).Rc);
        Assert.False(h.Model.DmaLog!.Active);
    }

    [Theory]
    [InlineData(4096ul, 4096ul)]
    [InlineData(8192ul, 8192ul)]
    [InlineData(1024ul, 4096ul)]           // below what the tracker supports
    [InlineData(0x300000ul, 0x200000ul)]   // ilog2: 3 MiB → 2 MiB
    [InlineData(1ul << 40, 1ul << 30)]     // above
    public void StartReturnsTheGranularityTheDeviceChose(ulong requested, ulong chosen)
    {
        using var h = Logger();
        Assert.Equal((0, chosen), Start(h, requested, (0, 1ul << 41)));
    }

    [Fact]
    public void ASecondStartWhileTrackingIsEinvalAndStopIsAlwaysZero()
    {
        using var h = Logger();
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, SET, 0).Rc);
        Assert.Equal(0, Start(h, 4096, (Base, 0x100000)).Rc);
        Assert.Equal(-Errno.EINVAL, Start(h, 4096, (Base, 0x100000)).Rc);
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, SET, 0).Rc);
        Assert.Equal(0, Start(h, 4096, (Base, 0x100000)).Rc);
    }

    [Fact]
    public void ReportChecksPageSizeOverflowTheBitmapAndThatTrackingRuns()
    {
        using var h = Logger();
        using var bitmap = new NativeBuffer(64);
        Assert.Equal(-Errno.EINVAL, Report(h, Base, 0x200000, 2048, bitmap));
        Assert.Equal(-Errno.EINVAL, Report(h, Base, 0x200000, 12288, bitmap));
        Assert.Equal(-Errno.EOVERFLOW, Report(h, 0xFFFFFFFFFFFFF000, 0x2000, 4096, bitmap));
        Assert.Equal(-Errno.EFAULT, Report(h, Base, 0x200000, 4096, null));
        Assert.Equal(-Errno.EINVAL, Report(h, Base, 0x200000, 4096, bitmap)); // not started
        Assert.Equal(0, Start(h, 4096, (Base, 0x200000)).Rc);
        Assert.Equal(0, Report(h, Base, 0x200000, 4096, bitmap));
        h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, SET, 0);
        Assert.Equal(-Errno.EINVAL, Report(h, Base, 0x200000, 4096, bitmap));
    }

    [Fact]
    public void TheRunningDeviceLogsItsWritesAndReportReadsAndClears()
    {
        using var h = Logger(pagesPerSecond: 100);
        Assert.Equal(0, Start(h, 4096, (Base, 0x200000)).Rc);
        h.Advance(1);
        using var bitmap = new NativeBuffer(64);
        Assert.Equal(0, Report(h, Base, 0x200000, 4096, bitmap));
        int first = Bits(bitmap);
        Assert.InRange(first, 70, 100); // 100 writes into 512 pages, some twice
        Assert.Equal(0, h.Model.DmaLog!.DirtyPages);
        bitmap.Clear(64);
        Assert.Equal(0, Report(h, Base, 0x200000, 4096, bitmap));
        Assert.Equal(0, Bits(bitmap)); // read and cleared
    }

    [Fact]
    public void ReportOnlySetsBitsAndCoarserPagesCoverTheWrites()
    {
        using var h = Logger(pagesPerSecond: 50);
        Assert.Equal(0, Start(h, 4096, (Base, 0x200000)).Rc);
        h.Advance(1);
        using var bitmap = new NativeBuffer(8);
        BinaryPrimitives.WriteUInt64LittleEndian(bitmap.Span, 0x8000_0000_0000_0000); // a bit the log does not hold
        Assert.Equal(0, Report(h, Base, 0x200000, 0x40000, bitmap)); // 256 KiB pages: 8 bits
        ulong word = BinaryPrimitives.ReadUInt64LittleEndian(bitmap.Span);
        Assert.Equal(0x8000_0000_0000_0000ul, word & 0x8000_0000_0000_0000ul);
        Assert.True((word & 0xFF) != 0);
        Assert.Equal(0ul, word & 0x7FFF_FFFF_FFFF_FF00ul);
    }

    [Fact]
    public void AStoppedDeviceWritesNothing()
    {
        using var h = Logger(pagesPerSecond: 100);
        h.MoveTo(VFIO_DEVICE_STATE_STOP);
        Assert.Equal(0, Start(h, 4096, (Base, 0x200000)).Rc);
        h.Advance(1);
        Assert.Equal(0, h.Model.DmaLog!.DirtyPages);
    }

    [Fact]
    public void MttysNoOpLoggingAcceptsEverythingAndReportsNothing()
    {
        var config = SimTopologies.Lab();
        config.IommufdDriver = true;   // a kernel with CONFIG_IOMMUFD_DRIVER, unlike the lab's
        config.Groups[2].Devices[0].Workload.GuestDirtyPagesPerSecond = 100;
        using var h = DeviceHarness.Mtty(config);
        h.Model.DmaLogIsNoOp = true;
        Assert.Equal((0, 8192ul), Start(h, 8192, (Base, 0x200000)));
        Assert.Equal(0, Start(h, 8192, (Base, 0x200000)).Rc); // mtty_log_start: 0, always
        h.Advance(1);
        using var bitmap = new NativeBuffer(64);
        Assert.Equal(0, Report(h, Base, 0x200000, 4096, bitmap));
        Assert.Equal(0, Bits(bitmap));
        Assert.Equal(-Errno.EINVAL, Start(h, 8192).Rc); // the core's checks still apply
    }

    [Fact]
    public void OnDebiansKernelAReportAnswersEopnotsuppAfterItsArgumentsAreCheckedWhileStartAndStopWork()
    {
        using var h = DeviceHarness.Mtty(SimTopologies.Lab());   // like Debian's 6.12: no CONFIG_IOMMUFD_DRIVER
        h.Model.DmaLogIsNoOp = true;
        Assert.Equal(0, Start(h, 4096, (Base, 0x200000)).Rc);
        using var bitmap = new NativeBuffer(64);
        Assert.Equal(-Errno.EINVAL, Report(h, Base, 0x200000, 1000, bitmap));        // the page size is checked first
        Assert.Equal(-Errno.EOPNOTSUPP, Report(h, Base, 0x200000, 4096, bitmap));   // then iova_bitmap_alloc's stub
    }

    [Fact]
    public void ClosingTheDeviceStopsTracking()
    {
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, SimDeviceExamples.V2PciDevice()));
        using (var h = DeviceHarness.Open(kernel, "0000:00:06.0")) Assert.Equal(0, Start(h, 4096, (Base, 0x1000)).Rc);
        Assert.False(kernel.FindDevice("0000:00:06.0")!.DmaLog!.Active);
    }
}
