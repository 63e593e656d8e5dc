using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Commands;

/// <summary>Stops type1 dirty-page tracking in containers (VFIO_IOMMU_DIRTY_PAGES STOP), or with -Device a device's own DMA log; what was recorded is forgotten.</summary>
[Cmdlet(VerbsLifecycle.Stop, "DirtyTracking", DefaultParameterSetName = InputObjectParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(VfioContainer))]
public sealed class StopDirtyTrackingCommand : DirtyTrackingCommandBase
{
    protected override string Action => "Stop dirty-page tracking (the kernel forgets what it recorded)";

    protected override void Apply(VfioContainer container) => container.StopDirtyTracking();

    protected override object? ApplyToDevice(VfioDevice device, VfioContainer container)
    {
        DeviceDirtyLog.Stop(device);
        return null;
    }
}
