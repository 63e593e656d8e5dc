using System.Collections.Generic;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation;

/// <summary>Topologies built in code (the shipped default lives in module/SimulatedHost/Default.psd1).</summary>
public static class SimTopologies
{
    /// <summary>The mtty sample's identity as the QEMU lab created it (type mtty-2).</summary>
    public const string LabMttyUuid = "36e5c7cc-4871-4d03-91da-44479a60a911";

    /// <summary>The lab's second mtty-2 (created after the first, so in the next group): the destination of restores.</summary>
    public const string LabMttyPeerUuid = "7b1f0c2a-9d4e-4c55-8a61-3e2f5d6c7b80";

    /// <summary>
    /// The QEMU lab of kernel-interface.md (lab) as a simulated host: the edu device (group 2, no reset), an e1000e (group 3,
    /// with reset), both on vfio-pci behind an emulated VT-d, and the mtty sample mdev (group 7) with v2
    /// migration (STOP_COPY|P2P|PRE_COPY), DMA logging, 24 bytes of pre-copy data and 72 more at stop-copy,
    /// and a second mtty-2 (group 8) to restore into. The conformance suite runs against this host and against the real lab with the same targets.
    /// </summary>
    public static SimHostConfiguration Lab() => new()
    {
        Name = "QEMU lab",
        // Debian's 6.12 kernel has no CONFIG_IOMMUFD_DRIVER: device DMA log reports answer EOPNOTSUPP.
        IommufdDriver = false,
        Groups = new List<SimGroupConfig>
        {
            new()
            {
                Number = 2,
                Devices = { new SimDeviceConfig { Name = "0000:00:02.0", Bus = SimBus.Pci, VendorId = 0x1234, DeviceId = 0x11e8, Driver = "vfio-pci", Reset = false } },
            },
            new()
            {
                Number = 3,
                Devices = { new SimDeviceConfig { Name = "0000:00:03.0", Bus = SimBus.Pci, VendorId = 0x8086, DeviceId = 0x10d3, Driver = "vfio-pci", Reset = true } },
            },
            new()
            {
                Number = 7,
                Devices =
                {
                    new SimDeviceConfig
                    {
                        Name = LabMttyUuid, Bus = SimBus.Mdev, MdevType = "mtty-2", Driver = "mtty",
                        Migration = SimMigrationProtocol.V2,
                        MigrationFlags = VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P | VfioConstants.VFIO_MIGRATION_PRE_COPY,
                        DmaLogging = true, Reset = false,
                    },
                },
            },
            new()
            {
                Number = 8,
                Devices =
                {
                    new SimDeviceConfig
                    {
                        Name = LabMttyPeerUuid, Bus = SimBus.Mdev, MdevType = "mtty-2", Driver = "mtty",
                        Migration = SimMigrationProtocol.V2,
                        MigrationFlags = VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P | VfioConstants.VFIO_MIGRATION_PRE_COPY,
                        DmaLogging = true, Reset = false,
                    },
                },
            },
        },
    };

    /// <summary>
    /// The reference iommufd kernel of docs/iommufd.md (a 6.12.117 built with IOMMUFD, the vfio cdev and
    /// IOMMUFD_DRIVER, booted under QEMU 7.2's intel-iommu, legacy mode, ECAP 0xf00f4a) as a simulated host: the
    /// lab's devices, with /dev/iommu and /dev/vfio/devices/vfio0..3 beside the legacy nodes, and an IOMMU that
    /// cannot track dirty pages, as no QEMU vIOMMU can. <paramref name="dirtyTracking"/> gives it instead a host
    /// VT-d that can (scalable mode with SSADS and SMPWC), which no lab has: the whole hardware path then runs.
    /// </summary>
    public static SimHostConfiguration LabIommufd(bool dirtyTracking = false, SimIommuModel model = SimIommuModel.IntelVtd)
    {
        var c = Lab();
        c.Name = dirtyTracking ? "iommufd host (dirty-tracking IOMMU)" : "QEMU lab, iommufd kernel";
        c.Iommufd = true;
        c.IommufdDriver = true;
        c.IommuModel = model;
        c.IommuDirtyTracking = dirtyTracking;
        return c;
    }
}
