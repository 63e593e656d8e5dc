using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Commands;

/// <summary>Starts type1 dirty-page tracking in containers (VFIO_IOMMU_DIRTY_PAGES START), or with -Device a device's own DMA log.</summary>
[Cmdlet(VerbsLifecycle.Start, "DirtyTracking", DefaultParameterSetName = InputObjectParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(VfioContainer), typeof(DeviceDirtyLogInfo))]
public sealed class StartDirtyTrackingCommand : DirtyTrackingCommandBase
{
    protected override string Action => "Start dirty-page tracking";

    protected override void Apply(VfioContainer container) => container.StartDirtyTracking();

    protected override object? ApplyToDevice(VfioDevice device, VfioContainer container) => DeviceDirtyLog.Start(device, container);
}
