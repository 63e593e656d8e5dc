using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>What the migration driver of devices reports: protocol, flags, state, v1 pending bytes, v2 pre-copy bytes and MIG_DATA_SIZE.</summary>
[Cmdlet(VerbsCommon.Get, "VfioMigrationInfo")]
[OutputType(typeof(VfioMigrationInfo))]
public sealed class GetVfioMigrationInfoCommand : DeviceCmdlet
{
    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs (Get-VfioDevice's Name binds by property).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    #endregion

    protected override void ProcessRecord() => ForEachDevice(Device, device => WriteObject(VfioMigrationInfo.Read(device)));
}
