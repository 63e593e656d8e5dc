using System;
using System.Collections.Generic;
using System.Globalization;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Conformance.DeviceScenarioCalls;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// The v2 migration of the mtty sample, step by step as kernel-interface.md lab 7.3 ran it ("== Device info / migration"):
/// features, RUNNING → PRE_COPY with a data fd, PRECOPY_INFO, the pre-copy data read to its end, STOP_COPY
/// continuing on the same fd (data_fd -1), the stream's size and header, STOP, RESUMING with the saved
/// stream written back, STOP (load), RUNNING, and an invalid state.
/// </summary>
public sealed class MigrationV2Scenario : ConformanceScenario
{
    public override string Name => "migration-v2";

    public override bool AppliesTo(ConformanceTarget target) => target.MdevGroup is not null && target.MdevDevice is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        using var opened = OpenDevice(host, target.MdevGroup!.Value, target.MdevDevice!, r);
        if (opened.Device is { } device) Migrate(host, device, r);
    }

    /// <summary>
    /// Device DMA logging with a real range (kernel-interface.md b.4): START over 2 MiB at 4 KiB, REPORT with
    /// a page size the core refuses and with a good one (which a kernel without CONFIG_IOMMUFD_DRIVER, as
    /// Debian's, answers EOPNOTSUPP), and STOP.
    /// </summary>
    private static void DmaLogging(VfioHost host, SafeFd device, ConformanceRecorder r)
    {
        using var ranges = new NativeBuffer(16);
        StructBytes.Write(ranges.Span, new vfio_device_feature_dma_logging_range { iova = 0x100000, length = 0x200000 });
        var start = Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET, 24);
        StructBytes.Write(start, new vfio_device_feature_dma_logging_control { page_size = 4096, num_ranges = 1, ranges = ranges.Address }, 8);
        r.Result("DMA_LOGGING_START", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, start));
        r.Record("DMA_LOGGING_START page_size", Hex(StructBytes.Read<vfio_device_feature_dma_logging_control>(start, 8).page_size));

        using var bitmap = new NativeBuffer(64);
        foreach (ulong pageSize in new ulong[] { 1000, 4096 })
        {
            var report = Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, VFIO_DEVICE_FEATURE_GET, 32);
            StructBytes.Write(report, new vfio_device_feature_dma_logging_report { iova = 0x100000, length = 0x200000, page_size = pageSize, bitmap = bitmap.Address }, 8);
            r.Result($"DMA_LOGGING_REPORT page_size {pageSize}", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, report));
        }
        var stop = Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, VFIO_DEVICE_FEATURE_SET, 0);
        r.Result("DMA_LOGGING_STOP", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, stop));
    }

    private static void Migrate(VfioHost host, SafeFd device, ConformanceRecorder r)
    {
        GetInfo(host, device, r);

        var probe = Feature(VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET, 8);
        r.Result("PROBE MIGRATION", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, probe));
        var migration = Feature(VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_GET, 8);
        r.Result("GET MIGRATION", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, migration));
        r.Record("migration flags", Hex(StructBytes.Read<vfio_device_feature_migration>(migration, 8).flags));

        var logging = Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET, 24);
        r.Result("PROBE DMA_LOGGING_START", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, logging));
        DmaLogging(host, device, r);

        var size = Feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET, 8);
        r.Result("GET MIG_DATA_SIZE", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, size));
        r.Record("stop_copy_length", StructBytes.Read<vfio_device_feature_mig_data_size>(size, 8).stop_copy_length.ToString(CultureInfo.InvariantCulture));

        GetState(host, device, r, "initial");

        var stream = new List<byte>();
        using (var preCopy = SetState(host, device, r, VFIO_DEVICE_STATE_PRE_COPY, "PRE_COPY"))
        {
            if (preCopy is null) return;
            PrecopyInfo(host, preCopy, r, "PRECOPY_INFO");
            ReadToEnd(host, preCopy, r, "pre-copy", stream);
            PrecopyInfo(host, preCopy, r, "PRECOPY_INFO after reading");
            GetState(host, device, r, "in pre-copy");

            using (var stopCopy = SetState(host, device, r, VFIO_DEVICE_STATE_STOP_COPY, "STOP_COPY"))
            {
                // kernel-interface.md lab 9: PRE_COPY → STOP_COPY returns -1 and the pre-copy fd carries the rest.
                ReadToEnd(host, stopCopy ?? preCopy, r, "stop-copy", stream);
            }
        }
        var bytes = stream.ToArray();
        r.Record("stream total bytes", bytes.Length.ToString(CultureInfo.InvariantCulture));
        r.Record("stream header", Bytes(bytes.AsSpan(0, Math.Min(24, bytes.Length))));
        GetState(host, device, r, "in stop-copy");

        using (SetState(host, device, r, VFIO_DEVICE_STATE_STOP, "STOP")) { }
        GetState(host, device, r, "stopped");

        using (var resume = SetState(host, device, r, VFIO_DEVICE_STATE_RESUMING, "RESUMING"))
        {
            if (resume is null) return;
            r.Result("write resume data_fd", host.TryWrite(resume, bytes));
        }
        using (SetState(host, device, r, VFIO_DEVICE_STATE_STOP, "STOP (load)")) { }
        using (SetState(host, device, r, VFIO_DEVICE_STATE_RUNNING, "RUNNING")) { }
        GetState(host, device, r, "resumed");

        var invalid = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET, 8);
        StructBytes.Write(invalid, new vfio_device_feature_mig_state { device_state = 42, data_fd = -1 }, 8);
        r.Result("SET MIG_DEVICE_STATE=42", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, invalid));
    }

    private static void PrecopyInfo(VfioHost host, SafeFd data, ConformanceRecorder r, string step)
    {
        var info = StructBytes.Buffer(new vfio_precopy_info { argsz = (uint)StructBytes.SizeOf<vfio_precopy_info>() });
        r.Result(step, host.TryIoctl(data, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO, info));
        var got = StructBytes.Read<vfio_precopy_info>(info);
        r.Record($"{step} initial_bytes/dirty_bytes", $"{got.initial_bytes}/{got.dirty_bytes}");
    }
}
