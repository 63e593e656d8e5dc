using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using VfioMigration.Core;
using VfioMigration.Core.DeviceChecks;
using VfioMigration.Core.Files;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Runs the migration-driver conformance suite (Core's DeviceCheckSuite) against one device and returns
/// its report; failed checks are also written as warnings, and the report as JUnit or NUnit XML on request.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "VfioDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(DeviceCheckReport))]
public sealed class TestVfioDeviceCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>The device to check; its group must be in a container of this session.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "";

    /// <summary>Only the checks of these areas.</summary>
    [Parameter]
    [ValidateSet("Protocol", "Arcs", "DataFd", "PreCopy", "Resuming", "P2P", "DmaLogging", "V1")]
    public string[]? Area { get; set; }


    /// <summary>Only the checks with these ids (docs/conformance.md lists them).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(DeviceCheckCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Check { get; set; }


    /// <summary>Also write the report to this file, as JUnit or NUnit XML.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputFile { get; set; }


    /// <summary>The format of -OutputFile: JUnitXml (default) or NUnitXml.</summary>
    [Parameter]
    [ValidateSet("JUnitXml", "NUnitXml")]
    public string OutputFormat { get; set; } = "JUnitXml";

    /// <summary>A second device that restores go into (the device itself without it).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Peer { get; set; }


    /// <summary>Only the checks of this severity.</summary>
    [Parameter]
    public CheckSeverity? Severity { get; set; }


    #endregion

    protected override void ProcessRecord()
    {
        if (Check is { Length: > 0 })
        {
            var unknown = Check.Where(id => !DeviceCheckSuite.Catalog.Any(c => c.Id.Equals(id, StringComparison.OrdinalIgnoreCase))).ToArray();
            if (unknown.Length > 0)
            {
                ThrowTerminatingError(RuleError($"No check is called {string.Join(", ", unknown)}; the checks are: {string.Join(", ", DeviceCheckSuite.Catalog.Select(c => c.Id))}.",
                    ErrorIds.UnknownCheck, ErrorCategory.InvalidArgument, string.Join(",", unknown)));
            }
        }
        using var trace = TraceCalls();
        var device = OpenSessionDevice(Device);
        if (device is null) return;
        var peer = Peer is null || Peer == Device ? null : OpenSessionDevice(Peer);
        if (Peer is not null && Peer != Device && peer is null) return;
        // The checks move the device through its migration states and restore streams into it (or the peer).
        string target = peer is null ? device.Name : $"{device.Name} and {peer.Name}";
        if (!ShouldProcess(target, "Run the migration-driver conformance checks (moves the device through its states, saves, restores and resets it; it ends in RUNNING)")) return;
        var container = VfioSession.Containers.FirstOrDefault(c => c.HoldsDevice(device.Name));
        var progress = new ProgressRecord(5, $"Test-VfioDevice {device.Name}", "starting");
        DeviceCheckReport report;
        try
        {
            report = DeviceCheckSuite.Run(device, peer, container, Area, Severity, Check,
                (done, all, check) =>
                {
                    progress.PercentComplete = all == 0 ? 100 : 100 * done / all;
                    progress.StatusDescription = done < all ? $"{done + 1} of {all}: {check.Id}" : "done";
                    WriteProgress(progress);
                }, StopToken);
        }
        catch (OperationCanceledException)
        {
            // Each check ends with the device in RUNNING: a stop between checks leaves it there.
            WarnEvenIfStopped($"Test-VfioDevice stopped; {device.Name} was left in RUNNING after its last check.");
            return;
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, device.Name));
            return;
        }
        finally
        {
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
        foreach (var r in report.Results)
        {
            if (r.Outcome == CheckOutcome.Failed)
                WriteWarning($"{r.Id} failed ({r.Severity.ToString().ToLowerInvariant()}): expected {r.Expected}; the device {r.Actual}. Rule: {r.Rule}");
            else
                WriteVerbose($"{r.Outcome} {r.Id}{(r.Outcome == CheckOutcome.Skipped ? ": " + r.Actual : "")}");
            if (r.Cleanup is not null) WriteVerbose($"after {r.Id}: {r.Cleanup}");
        }
        if (OutputFile is not null) WriteReport(report);
        WriteObject(report);
    }

    private void WriteReport(DeviceCheckReport report)
    {
        string path = GetUnresolvedProviderPathFromPSPath(OutputFile!);
        string xml = OutputFormat == "NUnitXml" ? report.ToNUnitXml() : report.ToJUnitXml();
        try
        {
            // A report replaces the last one (a lab keeps writing the same path), never half-written.
            using var file = new AtomicFileWriter(path, "test report", replace: true);
            file.Write(new UTF8Encoding(false).GetBytes(xml));
            file.Commit();
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, path));
        }
    }
}

/// <summary>Completes -Check with the suite's check ids.</summary>
public sealed class DeviceCheckCompleter : IArgumentCompleter
{
    public System.Collections.Generic.IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters) =>
        DeviceCheckSuite.Catalog.Where(c => c.Id.StartsWith(wordToComplete, StringComparison.OrdinalIgnoreCase))
            .Select(c => new CompletionResult(c.Id, c.Id, CompletionResultType.ParameterValue, c.Rule));
}
