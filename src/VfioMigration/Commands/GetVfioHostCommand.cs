using System.Management.Automation;
using VfioMigration.Core.Kernel;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Shows the host the session talks to.</summary>
[Cmdlet(VerbsCommon.Get, "VfioHost")]
[OutputType(typeof(VfioHostInfo))]
public sealed class GetVfioHostCommand : VfioCmdlet
{
    protected override void EndProcessing() =>
        WriteObject(HostInfo.Describe(CurrentHost, VfioSession.Configuration));
}
