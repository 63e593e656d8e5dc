using System.Collections.Generic;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>Which IOMMU is behind a device, as IOMMU_GET_HW_INFO (or sysfs) says.</summary>
public enum IommuHardwareType
{
    /// <summary>The driver reports no hardware data (IOMMU_HW_INFO_TYPE_NONE): AMD-Vi in 6.12, virtio-iommu.</summary>
    Unknown,

    /// <summary>Intel VT-d (IOMMU_HW_INFO_TYPE_INTEL_VTD): the capability and extended capability registers.</summary>
    IntelVtd,

    /// <summary>AMD-Vi, recognised by its sysfs node; its extended feature register from sysfs.</summary>
    AmdVi,

    /// <summary>Arm SMMUv3 (IOMMU_HW_INFO_TYPE_ARM_SMMUV3).</summary>
    ArmSmmuV3,
}

/// <summary>
/// What the IOMMU behind one device can do: IOMMU_GET_HW_INFO's type, data and out_capabilities, with the
/// VT-d capability words (or AMD-Vi's extended features, read from sysfs) decoded into the bits the kernel's
/// drivers test before they give iommufd a dirty-tracking domain (docs/iommufd.md).
/// </summary>
public sealed class IommuHardwareInfo
{
    /// <summary>The device asked about.</summary>
    public required string Device { get; init; }

    /// <summary>Its object id in the iommufd (VFIO_DEVICE_BIND_IOMMUFD's out_devid).</summary>
    public required uint DeviceId { get; init; }

    public required IommuHardwareType Type { get; init; }

    /// <summary>out_capabilities: IOMMU_HW_CAP_DIRTY_TRACKING (1) and later bits.</summary>
    public required ulong Capabilities { get; init; }

    /// <summary>The IOMMU can track dirty pages (IOMMU_HW_CAP_DIRTY_TRACKING): a HWPT with IOMMU_HWPT_ALLOC_DIRTY_TRACKING can be had.</summary>
    public bool DirtyTracking => (Capabilities & IommufdConstants.IOMMU_HW_CAP_DIRTY_TRACKING) != 0;

    /// <summary>VT-d capability register (cap_reg), or null.</summary>
    public ulong? VtdCap { get; init; }

    /// <summary>VT-d extended capability register (ecap_reg), or null.</summary>
    public ulong? VtdEcap { get; init; }

    /// <summary>AMD-Vi extended feature register (EFR), or null.</summary>
    public ulong? AmdEfr { get; init; }

    public required HostKind HostKind { get; init; }

    private static bool Bit(ulong? register, int bit) => register is { } r && ((r >> bit) & 1) != 0;

    /// <summary>VT-d scalable mode (ECAP SMTS, bit 43).</summary>
    public bool? ScalableMode => VtdEcap is null ? null : Bit(VtdEcap, 43);

    /// <summary>VT-d second-stage access/dirty bits (ECAP SSADS, bit 45).</summary>
    public bool? Ssads => VtdEcap is null ? null : Bit(VtdEcap, 45);

    /// <summary>VT-d page-walk coherency in scalable mode (ECAP SMPWC, bit 48).</summary>
    public bool? Smpwc => VtdEcap is null ? null : Bit(VtdEcap, 48);

    /// <summary>VT-d second-stage translation in scalable mode (ECAP SLTS, bit 46).</summary>
    public bool? SecondStage => VtdEcap is null ? null : Bit(VtdEcap, 46);

    /// <summary>VT-d first-stage translation (ECAP FLTS, bit 47).</summary>
    public bool? FirstStage => VtdEcap is null ? null : Bit(VtdEcap, 47);

    /// <summary>VT-d nested translation (ECAP NEST, bit 26).</summary>
    public bool? Nesting => VtdEcap is null ? null : Bit(VtdEcap, 26);

    /// <summary>VT-d guest address width in bits (CAP MGAW, bits 21:16, plus one).</summary>
    public int? AddressWidth => VtdCap is { } c ? (int)((c >> 16) & 0x3f) + 1 : null;

    /// <summary>AMD-Vi host dirty-bit support (EFR HDSup, bit 52).</summary>
    public bool? HdSup => AmdEfr is null ? null : Bit(AmdEfr, 52);

    /// <summary>Why the IOMMU cannot track dirty pages, in the driver's terms; null when it can.</summary>
    public string? NoDirtyTrackingReason
    {
        get
        {
            if (DirtyTracking) return null;
            if (VtdEcap is not null)
            {
                var missing = new List<string>();
                if (ScalableMode != true) missing.Add("scalable mode (ECAP SMTS, bit 43)");
                if (Ssads != true) missing.Add("SSADS (ECAP bit 45)");
                if (Smpwc != true) missing.Add("SMPWC (ECAP bit 48)");
                return $"VT-d without {string.Join(", ", missing)} (ECAP 0x{VtdEcap:x}): intel_iommu's ssads_supported() is false";
            }
            if (AmdEfr is not null) return $"AMD-Vi without HDSup (EFR bit 52; EFR 0x{AmdEfr:x})";
            return "the IOMMU driver reports no dirty-tracking capability";
        }
    }

    public override string ToString() => $"{Device}: {Type}, dirty tracking {(DirtyTracking ? "yes" : "no")}";
}
