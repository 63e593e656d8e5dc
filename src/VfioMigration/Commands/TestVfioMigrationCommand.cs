using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// A pre-flight report of a migration, in the manner of Hyper-V's Compare-VM: every reason it would fail
/// or disappoint, each with a MessageId and a sentence. Nothing is changed.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "VfioMigration")]
[OutputType(typeof(MigrationCompatibilityReport))]
public sealed class TestVfioMigrationCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>The device to migrate.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Device")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Source { get; set; } = "";

    /// <summary>The device that would receive the state (leave out to check the source alone).</summary>
    [Parameter(Position = 1)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Destination { get; set; }

    #endregion

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        WriteObject(MigrationPreflight.Check(CurrentHost, VfioSession.Containers, Source, Destination));
    }
}
