using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>The migration state of devices (v2 MIG_DEVICE_STATE, or v1 device_state as a state name).</summary>
[Cmdlet(VerbsCommon.Get, "VfioMigrationState")]
[OutputType(typeof(DeviceMigrationState))]
public sealed class GetVfioMigrationStateCommand : DeviceCmdlet
{
    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs (Get-VfioDevice's Name binds by property).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    #endregion

    protected override void ProcessRecord() => ForEachDevice(Device, device => WriteObject(DeviceMigrationState.Read(device)));
}
