using System;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Migrates a device's state to another device of the same kind on this host, or to a state file: pre-copy
/// iterations while the source runs, switchover when what remains fits in bandwidth × downtime limit
/// (QEMU's rule), then stop-and-copy. Returns a MigrationReport; Ctrl+C puts the source back to RUNNING.
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

    /// <summary>At most this many pre-copy iterations.</summary>
    [Parameter]
    [ValidateRange(1, 10000)]
    public int MaxIterations { get; set; } = 30;

    /// <summary>Target downtime in milliseconds (QEMU's downtime-limit).</summary>
    [Parameter]
    [ValidateRange(1, 2000000)]
    public int DowntimeLimit { get; set; } = 300;

    /// <summary>The link's bytes per second (128MB by default, QEMU's max-bandwidth).</summary>
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
        if (!ShouldProcess(Source, $"Migrate to {target} (the source stops at switchover; {Bandwidth} B/s, downtime limit {DowntimeLimit} ms)")) return;
        var progress = new ProgressRecord(5, $"Start-VfioMigration {Source} -> {target}", "setup");
        try
        {
            var report = MigrationRunner.Run(source, destination, path,
                new MigrationOptions { MaxIterations = MaxIterations, DowntimeLimit = TimeSpan.FromMilliseconds(DowntimeLimit), Bandwidth = Bandwidth, Container = Container },
                (phase, moved, remaining) =>
                {
                    progress.StatusDescription = $"{phase}: {Readable.Bytes(moved)} sent, {Readable.Bytes(remaining)} remaining";
                    WriteProgress(progress);
                }, StopToken);
            WriteObject(report);
            switch (report.Status)
            {
                case MigrationStatus.NotConverged:
                    WriteWarning($"The migration of {Source} did not converge: {report.ErrorDescription}. The source runs on; raise -Bandwidth or -DowntimeLimit, or reduce the load.");
                    break;
                case MigrationStatus.Cancelled:
                    WriteWarning($"The migration of {Source} was cancelled; the source runs on.");
                    break;
                case MigrationStatus.Failed:
                    WriteError(RuleError($"The migration of {Source} failed: {report.ErrorDescription}", "MigrationFailed", ErrorCategory.DeviceError, Source));
                    break;
            }
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, Source));
        }
        finally
        {
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
    }
}
