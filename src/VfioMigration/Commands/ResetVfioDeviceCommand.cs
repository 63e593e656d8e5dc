using System;
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
    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs (Get-VfioDevice's Name binds by property).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    #endregion

    protected override void ProcessRecord() => ForEachDevice(Device, device =>
    {
        if (ShouldProcess(device.Name, "Reset the device (VFIO_DEVICE_RESET)")) DeviceMigration.Reset(device);
    });
}
