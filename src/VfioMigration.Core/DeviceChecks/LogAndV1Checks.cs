using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Core.Native;
using static VfioMigration.Core.DeviceChecks.DeviceCheckContext;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.DeviceChecks;

/// <summary>
/// The checks of device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*) and of the 5.8 v1 migration region.
/// </summary>
internal static class LogAndV1Checks
{
    private const string VfioH = "include/uapi/linux/vfio.h";
    private const ulong LogIova = 0x1000_0000, LogLength = 2UL << 20, LogPage = 4096;

    private static string? Logs(DeviceCheckContext c) =>
        c.Device.ProbeFeature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET) ? null : "the device does not log its DMA (PROBE DMA_LOGGING_START fails)";

    private static string? V1Only(DeviceCheckContext c) => c.Support.Protocol == MigrationProtocol.V1 ? null : "the device has no v1 migration region";

    private static string? LogIdle(DeviceCheckContext c) =>
        Logs(c) ?? (c.Device.DmaLog is null ? null : "the device's DMA log is in use in this session (Stop-DirtyTracking -Device first)");

    /// <summary>SET DMA_LOGGING_START over <paramref name="ranges"/>: the result.</summary>
    private static int Start(DeviceCheckContext c, IReadOnlyList<(ulong Iova, ulong Length)> ranges, ulong pageSize = LogPage, uint? count = null)
    {
        using var table = new NativeBuffer(Math.Max(16L * ranges.Count, 16));
        for (int i = 0; i < ranges.Count; i++)
            StructBytes.Write(table.Span, new vfio_device_feature_dma_logging_range { iova = ranges[i].Iova, length = ranges[i].Length }, 16 * i);
        Span<byte> control = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_dma_logging_control>()];
        StructBytes.Write(control, new vfio_device_feature_dma_logging_control { page_size = pageSize, num_ranges = count ?? (uint)ranges.Count, ranges = table.Address });
        return c.Device.TryFeature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET, control);
    }

    private static int Stop(DeviceCheckContext c) =>
        c.Device.TryFeature(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, VFIO_DEVICE_FEATURE_SET, Span<byte>.Empty);

    /// <summary>GET DMA_LOGGING_REPORT of a range into a zeroed bitmap: the result and the bits set.</summary>
    private static (int Rc, ulong Bits) Report(DeviceCheckContext c, ulong iova, ulong length, ulong pageSize = LogPage)
    {
        ulong pages = (length + LogPage - 1) / LogPage;
        using var bitmap = new NativeBuffer((long)((pages + 63) / 64 * 8));
        Span<byte> report = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_dma_logging_report>()];
        StructBytes.Write(report, new vfio_device_feature_dma_logging_report { iova = iova, length = length, page_size = pageSize, bitmap = bitmap.Address });
        int rc = c.Device.TryFeature(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, VFIO_DEVICE_FEATURE_GET, report);
        ulong bits = 0;
        foreach (byte b in bitmap.Span) bits += (ulong)System.Numerics.BitOperations.PopCount(b);
        return (rc, bits);
    }

    /// <summary>EOPNOTSUPP from REPORT is the kernel's (no CONFIG_IOMMUFD_DRIVER), not the driver's: the check cannot judge it.</summary>
    private static void HostCanReport(int rc)
    {
        if (rc == -Errno.EOPNOTSUPP)
            Skip("host limitation: the kernel answers DMA_LOGGING_REPORT with EOPNOTSUPP before the driver sees it (built without CONFIG_IOMMUFD_DRIVER, as Debian's 6.12 is)");
    }

    public static IEnumerable<DeviceCheck> All()
    {
        yield return new DeviceCheck("dmalog.start-refuses-bad-control", "DmaLogging", CheckSeverity.Must,
            "DMA_LOGGING_START refuses no ranges (EINVAL), more ranges than the kernel guarantees (E2BIG) and a range not aligned to the page size (EINVAL), and starts nothing then.",
            "drivers/vfio/vfio_main.c: vfio_ioctl_device_feature_logging_start; vfio.h struct vfio_device_feature_dma_logging_control",
            c =>
            {
                int rc = Start(c, Array.Empty<(ulong, ulong)>());
                Expect(rc == -Errno.EINVAL, "START with num_ranges 0 to answer EINVAL", $"answered {Answer(rc)}");
                var many = Enumerable.Range(0, 257).Select(i => (LogIova + (ulong)i * 2 * LogPage, LogPage)).ToArray();
                rc = Start(c, many);
                Expect(rc == -Errno.E2BIG, "START with 257 ranges (the kernel guarantees 256 at 4 KiB pages) to answer E2BIG", $"answered {Answer(rc)}");
                rc = Start(c, new[] { (LogIova + 512, LogLength) });
                Expect(rc == -Errno.EINVAL, "START with a range not aligned to the page size to answer EINVAL", $"answered {Answer(rc)}");
                // Nothing was started: a good START works now.
                rc = Start(c, new[] { (LogIova, LogLength) });
                Expect(rc == 0, "a good START after the refused ones to succeed (nothing was left started)", $"answered {Answer(rc)}");
                Stop(c);
            }, LogIdle);

        yield return new DeviceCheck("dmalog.report-needs-start", "DmaLogging", CheckSeverity.Must,
            "DMA_LOGGING_REPORT while no log is started (before START, after STOP) fails: a VMM must not read an empty log as \"nothing written\".",
            $"{VfioH}: VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT (\"... a tracking ... was started\"); mlx5 and the vfio core answer EINVAL",
            c =>
            {
                var (rc, _) = Report(c, LogIova, LogLength);
                HostCanReport(rc);
                Expect(rc < 0, "REPORT before START to fail", "answered 0");
                Expect(Start(c, new[] { (LogIova, LogLength) }) == 0, "START to succeed", "refused it");
                Expect(Stop(c) == 0, "STOP to succeed", "refused it");
                (rc, _) = Report(c, LogIova, LogLength);
                HostCanReport(rc);
                Expect(rc < 0, "REPORT after STOP to fail", "answered 0");
            }, LogIdle);

        yield return new DeviceCheck("dmalog.report-refuses-bad-page-size", "DmaLogging", CheckSeverity.Must,
            "DMA_LOGGING_REPORT with a page_size below 4 KiB or not a power of two answers EINVAL.",
            "drivers/vfio/vfio_main.c: vfio_ioctl_device_feature_logging_report (page_size < SZ_4K or not a power of two: -EINVAL)",
            c =>
            {
                Expect(Start(c, new[] { (LogIova, LogLength) }) == 0, "START to succeed", "refused it");
                try
                {
                    foreach (ulong bad in new ulong[] { 4097, 2048, 12288 })
                    {
                        var (rc, _) = Report(c, LogIova, LogLength, bad);
                        Expect(rc == -Errno.EINVAL, $"REPORT at page_size {bad} to answer EINVAL", $"answered {Answer(rc)}");
                    }
                }
                finally { Stop(c); }
            }, LogIdle);

        yield return new DeviceCheck("dmalog.report-unlogged-range", "DmaLogging", CheckSeverity.Should,
            "DMA_LOGGING_REPORT of a range outside the logged ranges reports no page (or is refused): pages nobody logged cannot be known dirty.",
            $"{VfioH}: VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT (the ranges given at START are what is tracked)",
            c =>
            {
                Expect(Start(c, new[] { (LogIova, LogLength) }) == 0, "START to succeed", "refused it");
                try
                {
                    var (rc, bits) = Report(c, LogIova + (64UL << 20), LogLength);
                    HostCanReport(rc);
                    Expect(rc < 0 || bits == 0, "REPORT of an unlogged range to report nothing or be refused", $"answered {Answer(rc)} with {bits} page(s) dirty");
                }
                finally { Stop(c); }
            }, LogIdle);

        yield return new DeviceCheck("dmalog.stop-twice", "DmaLogging", CheckSeverity.Should,
            "A second DMA_LOGGING_STOP is harmless (it answers 0, as the core's callers assume on their error paths) and a START after it works.",
            "drivers/vfio/vfio_main.c: vfio_ioctl_device_feature_logging_stop; mlx5vf_stop_page_tracker (returns 0 when not tracking)",
            c =>
            {
                Expect(Start(c, new[] { (LogIova, LogLength) }) == 0, "START to succeed", "refused it");
                int rc = Stop(c);
                Expect(rc == 0, "STOP to answer 0", $"answered {Answer(rc)}");
                rc = Stop(c);
                Expect(rc == 0, "a second STOP to answer 0", $"answered {Answer(rc)}");
                rc = Start(c, new[] { (LogIova, LogLength) });
                Expect(rc == 0, "START after two STOPs to succeed", $"answered {Answer(rc)}");
                Stop(c);
            }, LogIdle);

        yield return new DeviceCheck("v1.states", "V1", CheckSeverity.Must,
            "Each v1 state (_RUNNING, _SAVING|_RUNNING, _SAVING, stopped, _RESUMING) is taken when written to device_state, which then reads back the same bits.",
            $"{VfioH} (5.8): struct vfio_device_migration_info (device_state, \"the vendor driver ... transitions\")",
            c =>
            {
                long region = (long)c.Support.V1Region!.Offset;
                foreach (var state in new[] { VfioMigrationState.PreCopy, VfioMigrationState.StopCopy, VfioMigrationState.Stop, VfioMigrationState.Running, VfioMigrationState.Stop, VfioMigrationState.Resuming })
                {
                    DeviceMigration.SetState(c.Device, state);
                    uint now = V1State(c, region) & VFIO_DEVICE_STATE_MASK, want = MigrationV1States.Bits(state);
                    Expect(now == want, $"device_state 0x{want:x} ({MigrationFsm.Name(state)}) after writing it", $"reads 0x{now:x}");
                }
            }, V1Only);

        yield return new DeviceCheck("v1.invalid-state-refused", "V1", CheckSeverity.Must,
            "A write of an invalid device_state (_RESUMING with _SAVING or _RUNNING) is refused with EINVAL and the state stays as it was.",
            $"{VfioH} (5.8): VFIO_DEVICE_STATE_VALID (\"_RESUMING ... exclusive\"); struct vfio_device_migration_info",
            c =>
            {
                long region = (long)c.Support.V1Region!.Offset;
                uint before = V1State(c, region);
                var b = new byte[4];
                foreach (uint bad in new uint[] { VFIO_DEVICE_STATE_V1_RESUMING | VFIO_DEVICE_STATE_V1_SAVING, VFIO_DEVICE_STATE_V1_RESUMING | VFIO_DEVICE_STATE_V1_RUNNING, 7 })
                {
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, bad);
                    long rc = c.Device.Host.TryPwrite(c.Device.Fd, b, region, "pwrite(device_state)");
                    Expect(rc == -Errno.EINVAL, $"device_state 0x{bad:x} to be refused with EINVAL", $"answered {Answer(rc)}");
                    uint now = V1State(c, region);
                    Expect(now == before, $"device_state to stay 0x{before:x}", $"is 0x{now:x}");
                }
            }, V1Only);

        yield return new DeviceCheck("v1.pending-drains", "V1", CheckSeverity.Must,
            "In stop-and-copy (_SAVING alone) the pending_bytes / data_offset / data_size cycles end with pending_bytes 0 within twice the bytes first announced, and every transaction lies inside the region.",
            $"{VfioH} (5.8): struct vfio_device_migration_info (\"... until pending_bytes is 0\")",
            c =>
            {
                var info = c.Support.V1Region!;
                long region = (long)info.Offset;
                DeviceMigration.SetState(c.Device, VfioMigrationState.StopCopy);
                ulong first = DeviceStream.ReadField(c.Device, region + 8, "pending_bytes");
                Expect(first > 0, "pending_bytes > 0 at the start of stop-and-copy", "answered 0");
                ulong moved = 0, pending = first;
                var buffer = new byte[1 << 16];
                while (pending > 0)
                {
                    ulong offset = DeviceStream.ReadField(c.Device, region + 16, "data_offset");
                    ulong size = DeviceStream.ReadField(c.Device, region + 24, "data_size");
                    Expect(size > 0, "data_size > 0 while pending_bytes > 0", $"answered data_size 0 with pending_bytes {pending}");
                    Expect(offset >= 32 && offset + size <= info.Size, $"the data inside the region (0x{info.Size:x} bytes, after its 32-byte header)", $"offered data at 0x{offset:x}+0x{size:x}");
                    for (ulong done = 0; done < size;)
                    {
                        int n = (int)Math.Min((ulong)buffer.Length, size - done);
                        c.Device.Host.Pread(c.Device.Fd, buffer.AsSpan(0, n), region + (long)(offset + done), "pread(data)");
                        done += (ulong)n;
                    }
                    moved += size;
                    pending = DeviceStream.ReadField(c.Device, region + 8, "pending_bytes");
                    Expect(moved <= 2 * first || pending == 0, $"pending_bytes to reach 0 within {2 * first} bytes (twice the {first} first announced)", $"still answered {pending} after {moved} bytes");
                }
            }, V1Only);

        yield return new DeviceCheck("v1.restores-state", "V1", CheckSeverity.Must,
            "A state saved through the region and written back in _RESUMING restores the device: a second save gives the same bytes.",
            $"{VfioH} (5.8): struct vfio_device_migration_info (saving and resuming sequences)",
            c =>
            {
                var a = V1Save(c, c.Device);
                var target = c.Target;
                var support = target.Migration;
                DeviceMigration.SetState(target, VfioMigrationState.Resuming);
                foreach (var chunk in a) DeviceStream.WriteV1Transaction(target, support, chunk);
                DeviceMigration.SetState(target, VfioMigrationState.Stop);
                var b = V1Save(c, target);
                var flatA = a.SelectMany(x => x).ToArray();
                var flatB = b.SelectMany(x => x).ToArray();
                Expect(flatA.AsSpan().SequenceEqual(flatB), $"the save after the restore to give the same {flatA.Length} bytes", $"gave {flatB.Length} bytes that differ");
            }, V1Only);
    }

    private static uint V1State(DeviceCheckContext c, long region)
    {
        Span<byte> b = stackalloc byte[4];
        c.Device.Host.Pread(c.Device.Fd, b, region, "pread(device_state)");
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>A v1 stop-and-copy save, transaction by transaction; the device is left stopped.</summary>
    private static List<byte[]> V1Save(DeviceCheckContext c, Vfio.VfioDevice device)
    {
        var chunks = new List<byte[]>();
        DeviceMigration.SetState(device, VfioMigrationState.StopCopy);
        DeviceStream.ReadV1(device, device.Migration, MigrationPhase.StopCopy, (_, data) => chunks.Add(data.ToArray()), null, new byte[1 << 16], CancellationToken.None);
        DeviceMigration.SetState(device, VfioMigrationState.Stop);
        return chunks;
    }
}
