namespace VfioMigration.Core.Simulation.Iommufd;

/// <summary>
/// The simulated host's IOMMU as its kernel driver sees it: the registers of the configuration and the
/// tests drivers/iommu/intel and drivers/iommu/amd make of them before they give iommufd a domain.
/// </summary>
internal sealed class SimIommuHardware
{
    private SimIommuHardware(SimIommuModel model, ulong cap, ulong ecap, ulong efr)
    {
        Model = model;
        Cap = cap;
        Ecap = ecap;
        Efr = efr;
    }

    public static SimIommuHardware From(SimHostConfiguration c) =>
        new(c.IommuModel, c.EffectiveVtdCap, c.EffectiveVtdEcap, c.EffectiveAmdEfr);

    /// <summary>The IOMMU behind <paramref name="group"/>: its own unit's default registers where it says, else the host's.</summary>
    public static SimIommuHardware From(SimHostConfiguration c, SimGroupConfig group) => group.IommuDirtyTracking is bool dirty
        ? new(c.IommuModel, c.EffectiveVtdCap,
            dirty ? SimHostConfiguration.DirtyVtdEcap : SimHostConfiguration.QemuVtdEcap,
            dirty ? SimHostConfiguration.DirtyAmdEfr : SimHostConfiguration.QemuAmdEfr)
        : From(c);

    public SimIommuModel Model { get; }

    public ulong Cap { get; }

    public ulong Ecap { get; }

    public ulong Efr { get; }

    private bool Intel => Model == SimIommuModel.IntelVtd;

    private static bool Bit(ulong register, int bit) => ((register >> bit) & 1) != 0;

    /// <summary>sm_supported(): ecap_smts (bit 43), with intel_iommu_sm on (SCALABLE_MODE_DEFAULT_ON, as the lab's kernel).</summary>
    public bool ScalableMode => Intel && Bit(Ecap, 43);

    /// <summary>
    /// A user domain is a second-stage table (intel_iommu_domain_alloc_user): in scalable mode the IOMMU needs
    /// ecap_slts (bit 46), or attaching one answers EINVAL (QEMU's x-flts=on has FLTS only).
    /// </summary>
    public bool SecondStage => !Intel || !ScalableMode || Bit(Ecap, 46);

    /// <summary>nested_supported(): ecap_nest (bit 26); AMD-Vi in 6.12 has no nesting parent.</summary>
    public bool NestParent => Intel && Bit(Ecap, 26);

    /// <summary>
    /// IOMMU_CAP_DIRTY_TRACKING. VT-d: ssads_supported() = scalable mode, ecap_slads (bit 45, SSADS) and
    /// ecap_smpwc (bit 48). AMD-Vi: amd_iommu_hd_support() = FEATURE_HDSUP (EFR bit 52).
    /// </summary>
    public bool DirtyTracking => Intel ? ScalableMode && Bit(Ecap, 45) && Bit(Ecap, 48) : Bit(Efr, 52);
}
