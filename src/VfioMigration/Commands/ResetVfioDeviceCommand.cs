using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Resets devices (VFIO_DEVICE_RESET): the way out of the migration ERROR state (v2) and of the v1
/// error state; a device's open data session ends.
/// </summary>
[Cmdlet(VerbsCommon.Reset, "VfioDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
public sealed class ResetVfioDeviceCommand : DeviceCmdlet
{
    protected override void ProcessRecord() => ForEachDevice(device =>
    {
        if (ShouldProcess(device.Name, "Reset the device (VFIO_DEVICE_RESET)")) DeviceMigration.Reset(device);
    });
}
