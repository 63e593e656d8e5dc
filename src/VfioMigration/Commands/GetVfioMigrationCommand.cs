using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// The reports of this session's migrations (Start-VfioMigration), oldest first, like QEMU's query-migrate
/// after the fact: a migration stopped with Ctrl+C cannot write its report to the stopped pipeline, and
/// its report is here, with its status and where both devices ended.
/// </summary>
[Cmdlet(VerbsCommon.Get, "VfioMigration")]
[OutputType(typeof(MigrationReport))]
public sealed class GetVfioMigrationCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>Only the migrations of this source device.</summary>
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Source { get; set; }

    /// <summary>Only the migrations that ended so (Completed, NotConverged, Failed, Cancelled).</summary>
    [Parameter]
    public MigrationStatus[]? Status { get; set; }

    #endregion

    protected override void EndProcessing()
    {
        foreach (var report in VfioSession.Migrations)
        {
            if (Source is not null && !string.Equals(report.Source, Source, System.StringComparison.OrdinalIgnoreCase)) continue;
            if (Status is { Length: > 0 } && System.Array.IndexOf(Status, report.Status) < 0) continue;
            WriteObject(report);
        }
    }
}
