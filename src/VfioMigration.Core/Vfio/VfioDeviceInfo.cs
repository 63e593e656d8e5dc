using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>A device as Get-VfioDevice shows it: sysfs facts, and what its VFIO driver answers.</summary>
public sealed class VfioDeviceInfo
{
    /// <summary>PCI address or mdev UUID.</summary>
    public required string Name { get; init; }

    public required string Bus { get; init; }

    public required int Group { get; init; }

    public int? VendorId { get; init; }

    public int? DeviceId { get; init; }

    public string? Driver { get; init; }

    public string? MdevType { get; init; }

    /// <summary>v1, v2 or none.</summary>
    public required MigrationProtocol Migration { get; init; }

    /// <summary>v2 flags as names: STOP_COPY, P2P, PRE_COPY.</summary>
    public required IReadOnlyList<string> MigrationFlags { get; init; }

    /// <summary>The device logs its own DMA writes (VFIO_DEVICE_FEATURE_DMA_LOGGING_*).</summary>
    public required bool DmaLogging { get; init; }

    /// <summary>Estimated stop-copy bytes (MIG_DATA_SIZE), where the device reports it.</summary>
    public ulong? StopCopySize { get; init; }

    /// <summary>VFIO_DEVICE_FLAGS_RESET.</summary>
    public required bool Reset { get; init; }

    public required IReadOnlyList<VfioRegion> Regions { get; init; }

    public required IReadOnlyList<VfioIrq> Irqs { get; init; }

    public required HostKind HostKind { get; init; }

    public required string Host { get; init; }

    public override string ToString() => Name;

    /// <summary>Reads what the device's driver answers through an open device.</summary>
    public static VfioDeviceInfo Inspect(VfioDevice device, VfioGroupDevice sysfs)
    {
        var info = device.GetInfo();
        var regions = device.GetRegions(info.num_regions);
        var irqs = device.GetIrqs(info.num_irqs);
        ulong? flags = device.GetMigrationFlags();
        var protocol = flags is not null ? MigrationProtocol.V2
            : regions.Any(r => r.Name == "Migration") ? MigrationProtocol.V1 : MigrationProtocol.None;
        var names = flags is { } f ? VfioMigration.Core.Migration.MigrationFsm.FlagNames(f).Split('|') : Array.Empty<string>();
        ulong? stopCopy = protocol == MigrationProtocol.V2 ? device.GetStopCopySize() : null;
        return new VfioDeviceInfo
        {
            Name = sysfs.Name,
            Bus = sysfs.Bus,
            Group = sysfs.Group,
            VendorId = sysfs.VendorId,
            DeviceId = sysfs.DeviceId,
            Driver = sysfs.Driver,
            MdevType = sysfs.MdevType,
            Migration = protocol,
            MigrationFlags = names,
            DmaLogging = device.ProbeFeature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VfioConstants.VFIO_DEVICE_FEATURE_SET),
            StopCopySize = stopCopy,
            Reset = (info.flags & VfioConstants.VFIO_DEVICE_FLAGS_RESET) != 0,
            Regions = regions,
            Irqs = irqs,
            HostKind = device.Host.Kind,
            Host = device.Host.Description,
        };
    }
}
