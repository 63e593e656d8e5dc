using System.Collections.Generic;
using System.Linq;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// Device configurations beyond the lab's (a v1-region device, v2 devices with fewer optional states, a
/// PCI variant-driver device with DMA logging) and hosts built from them, for tests and demonstrations.
/// </summary>
public static class SimDeviceExamples
{
    /// <summary>The 5.8 series' protocol: a v1 migration region at index 9 (a vendor device of the time).</summary>
    public static SimDeviceConfig V1Device(string name = "0000:00:05.0") => new()
    {
        Name = name, Bus = SimBus.Pci, VendorId = 0x10de, DeviceId = 0x1eb8, Driver = "vfio-pci",
        Migration = SimMigrationProtocol.V1, Reset = true,
        Workload = new SimWorkload { StateSize = 96, InitialBytes = 24 },
    };

    /// <summary>A v2 PCI function with a variant driver (like mlx5): all optional states, DMA logging, reset.</summary>
    public static SimDeviceConfig V2PciDevice(string name = "0000:00:06.0",
        ulong flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY, bool dmaLogging = true) => new()
    {
        Name = name, Bus = SimBus.Pci, VendorId = 0x15b3, DeviceId = 0x101e, Driver = "vfio-pci", // SimDeviceConfig.BoundToVfio does not yet know variant names such as mlx5_vfio_pci
        Migration = SimMigrationProtocol.V2, MigrationFlags = flags, DmaLogging = dmaLogging, Reset = true,
        Workload = new SimWorkload { StateSize = 96, InitialBytes = 24 },
    };

    /// <summary>A v2 device with STOP_COPY only: no RUNNING_P2P, no PRE_COPY (RUNNING ↔ STOP are direct arcs).</summary>
    public static SimDeviceConfig V2StopCopyOnly(string name = "0000:00:07.0") => V2PciDevice(name, VFIO_MIGRATION_STOP_COPY, dmaLogging: false);

    /// <summary>A v2 device with PRE_COPY but without P2P (PRE_COPY → STOP_COPY is a direct arc).</summary>
    public static SimDeviceConfig V2WithoutP2P(string name = "0000:00:08.0") => V2PciDevice(name, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY, dmaLogging: false);

    /// <summary>A v2 device with P2P but without PRE_COPY.</summary>
    public static SimDeviceConfig V2WithoutPreCopy(string name = "0000:00:09.0") => V2PciDevice(name, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, dmaLogging: false);

    /// <summary>A host with one group per device, numbered from <paramref name="firstGroup"/>.</summary>
    public static SimHostConfiguration Host(int firstGroup, params SimDeviceConfig[] devices) => new()
    {
        Name = "device examples",
        Groups = devices.Select((d, i) => new SimGroupConfig { Number = firstGroup + i, Devices = new List<SimDeviceConfig> { d } }).ToList(),
    };

    /// <summary>The lab (<see cref="SimTopologies.Lab"/>) with more devices, one group each, numbered from 10.</summary>
    public static SimHostConfiguration LabWith(params SimDeviceConfig[] devices)
    {
        var lab = SimTopologies.Lab();
        lab.Groups.AddRange(Host(10, devices).Groups);
        return lab;
    }
}
