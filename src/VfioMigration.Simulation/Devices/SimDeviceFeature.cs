using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// VFIO_DEVICE_FEATURE on a device fd: the core's checks and dispatch (vfio_main.c
/// vfio_ioctl_device_feature, vfio_check_feature in include/linux/vfio.h), the migration and DMA-logging
/// features the core implements over a driver's mig_ops/log_ops, and the driver's own features
/// (vfio_pci_core_ioctl_feature for PCI; none for mtty, whose unknown ids the core answers EINVAL).
/// </summary>
internal static class SimDeviceFeature
{
    private const int HeaderSize = 8; // offsetofend(struct vfio_device_feature, flags)

    public static int Handle(SimDevice device, Span<byte> arg)
    {
        if (arg.Length < HeaderSize) return -Errno.EFAULT;
        var feature = StructBytes.Read<vfio_device_feature>(arg);
        if (feature.argsz < HeaderSize) return -Errno.EINVAL;
        uint flags = feature.flags;
        if ((flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)) != 0)
            return -Errno.EINVAL;
        // GET and SET exclude each other except with PROBE.
        if ((flags & VFIO_DEVICE_FEATURE_PROBE) == 0 && (flags & VFIO_DEVICE_FEATURE_SET) != 0 && (flags & VFIO_DEVICE_FEATURE_GET) != 0)
            return -Errno.EINVAL;
        ulong argsz = feature.argsz - HeaderSize;
        var data = arg.Slice(HeaderSize);
        return (flags & VFIO_DEVICE_FEATURE_MASK) switch
        {
            VFIO_DEVICE_FEATURE_MIGRATION => Migration(device, flags, data, argsz),
            VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE => MigDeviceState(device, flags, data, argsz),
            VFIO_DEVICE_FEATURE_DMA_LOGGING_START => LoggingStart(device, flags, data, argsz),
            VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP => LoggingStop(device, flags, argsz),
            VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT => LoggingReport(device, flags, data, argsz),
            VFIO_DEVICE_FEATURE_MIG_DATA_SIZE => MigDataSize(device, flags, data, argsz),
            _ => DriverFeature(device, flags, data, argsz),
        };
    }

    /// <summary>
    /// vfio_check_feature: 1 to go on with the transfer, 0 for a successful PROBE, or -EINVAL (an op the
    /// feature lacks, neither GET nor SET, or a payload shorter than the feature's struct).
    /// </summary>
    public static int Check(uint flags, ulong argsz, uint supportedOps, ulong minsz)
    {
        if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET) & ~supportedOps) != 0) return -Errno.EINVAL;
        if ((flags & VFIO_DEVICE_FEATURE_PROBE) != 0) return 0;
        if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) == 0) return -Errno.EINVAL;
        if (argsz < minsz) return -Errno.EINVAL;
        return 1;
    }

    private static int Migration(SimDevice device, uint flags, Span<byte> data, ulong argsz)
    {
        if (device.MigrationV2 is not { } v2) return -Errno.ENOTTY;
        int rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_GET, 8);
        if (rc != 1) return rc;
        if (data.Length < 8) return -Errno.EFAULT;
        StructBytes.Write(data, new vfio_device_feature_migration { flags = v2.Flags });
        return 0;
    }

    private static int MigDeviceState(SimDevice device, uint flags, Span<byte> data, ulong argsz)
    {
        if (device.MigrationV2 is not { } v2) return -Errno.ENOTTY;
        int rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET, 8);
        if (rc != 1) return rc;
        if (data.Length < 8) return -Errno.EFAULT;
        var mig = StructBytes.Read<vfio_device_feature_mig_state>(data);
        if ((flags & VFIO_DEVICE_FEATURE_GET) != 0)
        {
            mig.device_state = v2.State;
            mig.data_fd = -1;
            StructBytes.Write(data, mig);
            return 0;
        }
        rc = v2.Set(mig.device_state, out var file);
        // vfio_ioct_mig_return_fd: a new O_CLOEXEC descriptor for the session's file; -1 otherwise and on failure.
        mig.data_fd = rc == 0 && file is not null ? device.Kernel.Install(file) : -1;
        StructBytes.Write(data, mig);
        return rc;
    }

    private static int MigDataSize(SimDevice device, uint flags, Span<byte> data, ulong argsz)
    {
        if (device.MigrationV2 is null) return -Errno.ENOTTY;
        int rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_GET, 8);
        if (rc != 1) return rc;
        if (data.Length < 8) return -Errno.EFAULT;
        // migration_get_data_size: mtty answers its fixed mtty_data_size (96 for mtty-2).
        ulong length = (ulong)device.Workload.StateSize;
        if (device.Has(SimDefect.DataSizeUnderReport)) length = Math.Max(1, length / 2);
        StructBytes.Write(data, new vfio_device_feature_mig_data_size { stop_copy_length = length });
        return 0;
    }

    /// <summary>vfio_ioctl_device_feature_logging_start.</summary>
    private static int LoggingStart(SimDevice device, uint flags, Span<byte> data, ulong argsz)
    {
        if (device.DmaLog is not { } log) return -Errno.ENOTTY;
        int rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_SET, 24);
        if (rc != 1) return rc;
        if (data.Length < 24) return -Errno.EFAULT;
        var control = StructBytes.Read<vfio_device_feature_dma_logging_control>(data);
        if (control.num_ranges == 0) return -Errno.EINVAL;
        if (control.num_ranges > LOG_MAX_RANGES) return -Errno.E2BIG;
        var ranges = new List<(ulong Iova, ulong Length)>((int)control.num_ranges);
        Span<byte> one = stackalloc byte[16];
        for (uint i = 0; i < control.num_ranges; i++)
        {
            if (!UserMemory.CopyFromUser(one, control.ranges + i * 16UL)) return -Errno.EFAULT;
            var range = StructBytes.Read<vfio_device_feature_dma_logging_range>(one);
            // IS_ALIGNED(x, a) is (x & (a - 1)) == 0, whatever a is.
            if ((range.iova & (control.page_size - 1)) != 0 || (range.length & (control.page_size - 1)) != 0) return -Errno.EINVAL;
            if (range.iova + range.length < range.iova) return -Errno.EOVERFLOW;
            // The interval tree refuses a range overlapping one given before it.
            if (range.length > 0)
            {
                ulong last = range.iova + range.length - 1;
                foreach (var (iova, length) in ranges)
                    if (length > 0 && range.iova <= iova + length - 1 && iova <= last) return -Errno.EINVAL;
            }
            ranges.Add((range.iova, range.length));
        }
        if (!device.DmaLogIsNoOp)
        {
            ulong pageSize = control.page_size;
            rc = log.Start(ranges, ref pageSize);
            if (rc < 0) return rc;
            control.page_size = pageSize;
        }
        StructBytes.Write(data, control);
        return 0;
    }

    private static int LoggingStop(SimDevice device, uint flags, ulong argsz)
    {
        if (device.DmaLog is not { } log) return -Errno.ENOTTY;
        int rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
        if (rc != 1) return rc;
        return device.DmaLogIsNoOp ? 0 : log.Stop();
    }

    /// <summary>vfio_ioctl_device_feature_logging_report.</summary>
    private static int LoggingReport(SimDevice device, uint flags, Span<byte> data, ulong argsz)
    {
        if (device.DmaLog is not { } log) return -Errno.ENOTTY;
        int rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_GET, 32);
        if (rc != 1) return rc;
        if (data.Length < 32) return -Errno.EFAULT;
        var report = StructBytes.Read<vfio_device_feature_dma_logging_report>(data);
        if (report.page_size < 4096 || (report.page_size & (report.page_size - 1)) != 0) return -Errno.EINVAL;
        if (report.iova + report.length < report.iova) return -Errno.EOVERFLOW;
        // iova_bitmap_alloc: without CONFIG_IOMMUFD_DRIVER it is a stub that answers EOPNOTSUPP.
        if (!device.Kernel.Configuration.IommufdDriver) return -Errno.EOPNOTSUPP;
        if (report.length > 0)
        {
            ulong bytes = ((report.length - 1) / report.page_size / 64 + 1) * 8;
            // iova_bitmap_alloc pins the user bitmap before the driver is called.
            if (report.bitmap == 0 || !UserMemory.AccessOk(report.bitmap, bytes)) return -Errno.EFAULT;
        }
        device.Tick();
        if (device.DmaLogIsNoOp) return 0;
        // A driver that does not check for a started log reports an empty one (the bitmap stays as it was).
        if (!log.Active && device.Has(SimDefect.DmaLogReportBeforeStart)) return 0;
        return log.ReadAndClear(report.iova, report.length, report.page_size, report.bitmap);
    }

    /// <summary>The driver's device_feature: vfio_pci_core_ioctl_feature for PCI; mtty has none (EINVAL).</summary>
    private static int DriverFeature(SimDevice device, uint flags, Span<byte> data, ulong argsz)
    {
        if (device.IsMdev) return -Errno.EINVAL;
        int rc;
        switch (flags & VFIO_DEVICE_FEATURE_MASK)
        {
            case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
                rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
                if (rc != 1) return rc;
                if (device.LowPower) return -Errno.EINVAL; // vfio_pci_runtime_pm_entry: already engaged
                device.LowPower = true;
                return 0;
            case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
            {
                rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_SET, 8);
                if (rc != 1) return rc;
                if (data.Length < 8) return -Errno.EFAULT;
                int eventfd = BinaryPrimitives.ReadInt32LittleEndian(data);
                if (BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(4)) != 0) return -Errno.EINVAL;
                // eventfd_ctx_fdget: no such fd → EBADF; a file that is not an eventfd (the simulator has none) → EINVAL.
                return device.Kernel.Lookup(eventfd) is null ? -Errno.EBADF : -Errno.EINVAL;
            }
            case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
                rc = Check(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
                if (rc != 1) return rc;
                device.LowPower = false;
                return 0;
            default:
                // PCI_VF_TOKEN without SR-IOV (no vf_token), and any id vfio-pci does not know.
                return -Errno.ENOTTY;
        }
    }
}
