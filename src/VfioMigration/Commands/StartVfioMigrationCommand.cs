using System;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Migrates a device's state to another device of the same kind on this host, or to a state file: pre-copy
/// iterations while the source runs, switchover when what remains fits in bandwidth × downtime limit
/// (QEMU's rule), then stop-and-copy. Returns a MigrationReport, and keeps it for Get-VfioMigration. Every
/// exit that is not a completion, Ctrl+C included, leaves the source in RUNNING (or names it in ERROR),
/// resets the destination and leaves no partial file (docs/when-a-migration-fails.md).
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "VfioMigration", DefaultParameterSetName = DeviceParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(MigrationReport))]
public sealed class StartVfioMigrationCommand : VfioCmdlet
{
    private const string DeviceParameterSet = "Device";
    private const string FileParameterSet = "File";

    #region Parameters

    /// <summary>The device to migrate (PCI address or mdev UUID).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Device")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Source { get; set; } = "";

    /// <summary>The device that receives the state: same kind, on this host.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = DeviceParameterSet)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    /// <summary>A state file to migrate into instead of a device.</summary>
    [Parameter(Mandatory = true, ParameterSetName = FileParameterSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Replace an existing state file.</summary>
    [Parameter(ParameterSetName = FileParameterSet)]
    public SwitchParameter Force { get; set; }

    /// <summary>At most this many pre-copy iterations.</summary>
    [Parameter]
    [ValidateRange(1, 10000)]
    public int MaxIterations { get; set; } = 30;

    /// <summary>Target downtime (QEMU's downtime-limit): a TimeSpan, milliseconds, or 300ms / 2s.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan DowntimeLimit { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>The link's bytes per second (128MB by default, QEMU's max-bandwidth; at least 1MB).</summary>
    [Parameter]
    [NumberTransformation]
    public ulong Bandwidth { get; set; } = 128UL << 20;

    /// <summary>Guest memory whose dirty pages count in what remains (its dirty tracking must run).</summary>
    [Parameter]
    public VfioContainer? Container { get; set; }

    #endregion


    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        var source = OpenSessionDevice(Source);
        if (source is null) return;
        VfioDevice? destination = null;
        string? path = null;
        if (ParameterSetName == DeviceParameterSet)
        {
            destination = OpenSessionDevice(Destination);
            if (destination is null) return;
        }
        else
        {
            path = GetUnresolvedProviderPathFromPSPath(Path);
        }
        string target = destination?.Name ?? path!;
        if (!ShouldProcess(Source, $"Migrate to {target} (the source stops at switchover; {Readable.Bytes(Bandwidth)}/s, downtime limit {DowntimeLimit.TotalMilliseconds:0.###} ms)")) return;
        var progress = new ProgressRecord(5, $"Start-VfioMigration {Source} -> {target}", "setup");
        MigrationReport report;
        try
        {
            report = MigrationRunner.Run(source, destination, path,
                new MigrationOptions { MaxIterations = MaxIterations, DowntimeLimit = DowntimeLimit, Bandwidth = Bandwidth, Container = Container },
                p => WriteTransferProgress(progress, p, "sent"), StopToken, replace: Force);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            // Refused before anything moved (a rule, an existing file, a device in the wrong state).
            WriteError(ErrorFor(e, Source));
            return;
        }
        VfioSession.RecordMigration(report);
        switch (report.Status)
        {
            case MigrationStatus.Completed:
                if (report.DowntimeExceeded)
                {
                    WarnEvenIfStopped($"The migration of {Source} completed, but the source was stopped for {report.Downtime.TotalMilliseconds:0} ms, more than the -DowntimeLimit of {DowntimeLimit.TotalMilliseconds:0.###} ms. " +
                        "Like QEMU, the module uses the limit as the target of its switchover decision (what remains ≤ bandwidth × limit), not as a guarantee; the report's DowntimeExceeded says so.");
                }
                if (report.StopAfterPointOfNoReturn)
                    WarnEvenIfStopped($"Ctrl+C came after the point of no return: the migration of {Source} to {target} had completed and was kept ({report.DestinationOutcome?.ToString() ?? "the state file is whole"}).");
                break;
            case MigrationStatus.NotConverged:
                WarnEvenIfStopped($"The migration of {Source}: {report.ErrorDescription}");
                break;
            case MigrationStatus.Cancelled:
                WarnEvenIfStopped($"{report.ErrorDescription} The report: Get-VfioMigration | Select-Object -Last 1");
                break;
            case MigrationStatus.Failed:
                WriteError(ErrorFor(new MigrationFailedException(report.ErrorId ?? ErrorIds.MigrationFailed, report.Status, report.FailedPhase ?? "",
                    report.ErrorDescription ?? "The migration failed.", report.SourceOutcome, report.DestinationOutcome, report.FileWritten, null), Source));
                break;
        }
        WriteObject(report);
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
    }
}
