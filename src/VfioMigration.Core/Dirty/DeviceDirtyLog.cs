using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Dirty;

/// <summary>A device's running DMA log: the ranges it covers and the granularity the device chose.</summary>
public sealed class DeviceDirtyLogInfo
{
    public required string Device { get; init; }

    /// <summary>Bytes per bit, as the device chose it (START's page_size out).</summary>
    public required ulong PageSize { get; init; }

    public required IReadOnlyList<DirtyRange> Ranges { get; init; }

    public required HostKind HostKind { get; init; }

    public override string ToString() => $"{Device}: {Ranges.Count} range(s) at 0x{PageSize:x}";
}

/// <summary>
/// Device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START / REPORT / STOP, kernel-interface.md b.4): a
/// device that logs its own DMA writes gives precise dirty pages even behind an IOMMU, where the
/// container's type1 tracking can only say "every mapped page". The log covers the mappings of the
/// container that holds the device.
/// </summary>
public static class DeviceDirtyLog
{
    /// <summary>The ranges the kernel's core accepts in one START on 4 KiB-page hosts (LOG_MAX_RANGES = PAGE_SIZE / 16).</summary>
    public const int MaxRanges = 256;

    /// <summary>
    /// The ranges to log for a container's mappings: adjacent mappings joined, and with more than
    /// <paramref name="maxRanges"/> ranges the smallest gaps closed until they fit, as the kernel's
    /// vfio_combine_iova_ranges does for a device that takes fewer (E2BIG otherwise).
    /// </summary>
    public static IReadOnlyList<(ulong Iova, ulong Length)> RangesFor(IEnumerable<(ulong Iova, ulong Size)> mappings, int maxRanges = MaxRanges)
    {
        var ranges = new List<(ulong Start, ulong End)>();
        foreach (var (iova, size) in mappings.Where(m => m.Size > 0).OrderBy(m => m.Iova))
        {
            if (ranges.Count > 0 && iova <= ranges[^1].End) ranges[^1] = (ranges[^1].Start, Math.Max(ranges[^1].End, iova + size));
            else ranges.Add((iova, iova + size));
        }
        while (ranges.Count > maxRanges)
        {
            int closest = 0;
            for (int i = 1; i < ranges.Count - 1; i++)
                if (ranges[i + 1].Start - ranges[i].End < ranges[closest + 1].Start - ranges[closest].End) closest = i;
            ranges[closest] = (ranges[closest].Start, ranges[closest + 1].End);
            ranges.RemoveAt(closest + 1);
        }
        return ranges.Select(r => (r.Start, r.End - r.Start)).ToList();
    }

    /// <summary>START over the mappings of <paramref name="container"/> at <paramref name="pageSize"/>; the log's ranges and granularity.</summary>
    public static DeviceDirtyLogInfo Start(VfioDevice device, VfioContainer container, ulong pageSize = 4096)
    {
        if (device.DmaLog is not null)
            throw new VfioRuleException("DeviceLogAlreadyStarted", $"{device.Name} logs its DMA already (one START at a time): stop it first (Stop-DirtyTracking -Device {device.Name}).");
        if (!device.ProbeFeature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VfioConstants.VFIO_DEVICE_FEATURE_SET))
            throw new VfioRuleException("NoDeviceDmaLogging", $"{device.Name} does not log its own DMA (PROBE DMA_LOGGING_START fails); track container {container.Id} instead (Start-DirtyTracking without -Device).");
        var ranges = RangesFor(container.Mappings.Select(m => (m.Iova.Value, m.Size)));
        if (ranges.Count == 0)
            throw new VfioRuleException("NoMappings", $"Container {container.Id} has no DMA mappings for {device.Name} to log; map memory first (New-VfioDmaMapping).");
        foreach (var (iova, length) in ranges)
            if (iova % pageSize != 0 || length % pageSize != 0)
                throw new VfioRuleException("RangeNotAligned", $"the range 0x{iova:x}+0x{length:x} is not aligned to the log's page size 0x{pageSize:x} (the kernel answers EINVAL).");

        using var table = new NativeBuffer(16L * ranges.Count);
        for (int i = 0; i < ranges.Count; i++)
            StructBytes.Write(table.Span, new vfio_device_feature_dma_logging_range { iova = ranges[i].Iova, length = ranges[i].Length }, 16 * i);
        Span<byte> control = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_dma_logging_control>()];
        StructBytes.Write(control, new vfio_device_feature_dma_logging_control { page_size = pageSize, num_ranges = (uint)ranges.Count, ranges = table.Address });
        int rc = device.TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VfioConstants.VFIO_DEVICE_FEATURE_SET, control);
        if (rc < 0) throw new VfioNativeException("VFIO_DEVICE_FEATURE(SET DMA_LOGGING_START)", -rc, device.Name, $"{ranges.Count} range(s) at 0x{pageSize:x}");
        ulong chosen = StructBytes.Read<vfio_device_feature_dma_logging_control>(control).page_size;
        var info = new DeviceDirtyLogInfo
        {
            Device = device.Name, PageSize = chosen, HostKind = device.Host.Kind,
            Ranges = ranges.Select(r => new DirtyRange { Iova = r.Iova, Size = r.Length, Pages = r.Length / chosen }).ToList(),
        };
        device.DmaLog = info;
        return info;
    }

    /// <summary>
    /// REPORT: reads and clears the log over a range (the logged extent by default) at the log's page size,
    /// into a DeviceLog-scoped bitmap.
    /// </summary>
    public static DirtyBitmap Read(VfioDevice device, ulong? iova = null, ulong? size = null)
    {
        var log = device.DmaLog ?? throw new VfioRuleException("DeviceLogNotStarted", $"{device.Name} is not logging its DMA: start it with Start-DirtyTracking -Device {device.Name}.");
        ulong first = log.Ranges.Min(r => r.Iova.Value), end = log.Ranges.Max(r => r.Iova.Value + r.Size);
        ulong start = iova ?? first;
        ulong length = size ?? (end > start ? end - start : 0);
        if (length == 0) throw new VfioRuleException("RangeEmpty", $"the range at 0x{start:x} is empty: the log covers 0x{first:x} to 0x{end:x}.");
        ulong pages = (length + log.PageSize - 1) / log.PageSize;
        // REPORT only sets bits: the buffer starts zeroed (NativeBuffer is zero-filled).
        using var bitmap = new NativeBuffer((long)((pages + 63) / 64 * 8));
        Span<byte> report = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_dma_logging_report>()];
        StructBytes.Write(report, new vfio_device_feature_dma_logging_report { iova = start, length = length, page_size = log.PageSize, bitmap = bitmap.Address });
        int rc = device.TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, VfioConstants.VFIO_DEVICE_FEATURE_GET, report);
        if (rc == -Errno.EOPNOTSUPP)
            throw new VfioRuleException("DeviceLogReportUnsupported",
                $"the kernel cannot report {device.Name}'s DMA log (VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT answers EOPNOTSUPP): it is built without CONFIG_IOMMUFD_DRIVER, as Debian's 6.12 kernels are. " +
                "The log itself runs (START and STOP work); the container's dirty tracking (Start-DirtyTracking and Get-DirtyBitmap without -Device) still reports dirty pages.");
        if (rc < 0) throw new VfioNativeException("VFIO_DEVICE_FEATURE(GET DMA_LOGGING_REPORT)", -rc, device.Name, $"0x{start:x}+0x{length:x} at 0x{log.PageSize:x}");
        var words = MemoryMarshal.Cast<byte, ulong>(bitmap.Span).ToArray();
        // The ranges the device logs are what it was told was mapped: outside them nothing can read dirty (a gap).
        return new DirtyBitmap(start, pages * log.PageSize, log.PageSize, words, DirtyScope.DeviceLog, device.Host.Kind, device.Host.Description, DateTimeOffset.Now)
        {
            MappedRanges = log.Ranges.Select(r => new MappedRange(r.Iova.Value, r.Size)).ToArray(),
        };
    }

    /// <summary>STOP: the device forgets its log.</summary>
    public static void Stop(VfioDevice device)
    {
        if (device.DmaLog is null)
            throw new VfioRuleException("DeviceLogNotStarted", $"{device.Name} is not logging its DMA.");
        int rc = device.TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, VfioConstants.VFIO_DEVICE_FEATURE_SET, Span<byte>.Empty);
        if (rc < 0) throw new VfioNativeException("VFIO_DEVICE_FEATURE(SET DMA_LOGGING_STOP)", -rc, device.Name);
        device.DmaLog = null;
    }
}
