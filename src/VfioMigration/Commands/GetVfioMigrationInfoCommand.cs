using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>What the migration driver of devices reports: protocol, flags, state, v1 pending bytes, v2 pre-copy bytes and MIG_DATA_SIZE.</summary>
[Cmdlet(VerbsCommon.Get, "VfioMigrationInfo")]
[OutputType(typeof(VfioMigrationInfo))]
public sealed class GetVfioMigrationInfoCommand : DeviceCmdlet
{
    protected override void ProcessRecord() => ForEachDevice(device => WriteObject(VfioMigrationInfo.Read(device)));
}
