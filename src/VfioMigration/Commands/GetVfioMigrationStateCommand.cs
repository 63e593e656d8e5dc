using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>The migration state of devices (v2 MIG_DEVICE_STATE, or v1 device_state as a state name).</summary>
[Cmdlet(VerbsCommon.Get, "VfioMigrationState")]
[OutputType(typeof(DeviceMigrationState))]
public sealed class GetVfioMigrationStateCommand : DeviceCmdlet
{
    protected override void ProcessRecord() => ForEachDevice(device => WriteObject(DeviceMigrationState.Read(device)));
}
