using System.Collections;
using System.IO;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Runs the lab checks that ship with the module (LabChecks/DeviceMigration.Tests.ps1) against one
/// device through Invoke-Pester, and returns Pester's result. Needs Pester 5 or later.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "VfioDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PSObject))]
public sealed class TestVfioDeviceCommand : VfioCmdlet
{
    /// <summary>The checks' file, next to the module's assembly.</summary>
    public const string ChecksFile = "LabChecks/DeviceMigration.Tests.ps1";

    #region Parameters

    /// <summary>The device to check; its group must be in a container of this session.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "";

    /// <summary>A second device of the same kind for the save-restore-save check (the device itself by default).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Peer { get; set; }

    /// <summary>Pester's output verbosity: None, Normal, Detailed.</summary>
    [Parameter]
    [ValidateSet("None", "Normal", "Detailed", "Diagnostic")]
    public string Output { get; set; } = "Detailed";

    #endregion

    protected override void ProcessRecord()
    {
        string checks = Path.Combine(Path.GetDirectoryName(typeof(TestVfioDeviceCommand).Assembly.Location) ?? ".", ChecksFile);
        if (!File.Exists(checks))
        {
            ThrowTerminatingError(RuleError($"The lab checks are missing: {checks}.", ErrorIds.LabChecksNotFound, ErrorCategory.ObjectNotFound, checks));
        }
        // Pester may be loaded already (a lab's run) or installed; either way version 5 or later.
        var pester = InvokeCommand.InvokeScript(
            "$loaded = Get-Command Invoke-Pester -ErrorAction Ignore | Where-Object { $_.Module.Version -ge [version]'5.0' }; " +
            "if ($loaded) { $loaded.Module } else { Get-Module -ListAvailable Pester | Where-Object { $_.Version -ge [version]'5.0' } | Select-Object -First 1 }");
        if (pester.Count == 0)
        {
            ThrowTerminatingError(RuleError("Test-VfioDevice runs its checks with Pester 5 or later, which is not installed: Install-PSResource Pester (or Install-Module Pester).",
                ErrorIds.PesterNotFound, ErrorCategory.NotInstalled, "Pester"));
        }
        // The checks move the device through its states and save and restore it, so they change it.
        if (!ShouldProcess(Device, "Run the lab checks (moves the device through its migration states, saves and restores its state)")) return;
        var data = new Hashtable { ["Device"] = Device };
        if (Peer is not null) data["Peer"] = Peer;
        var result = InvokeCommand.InvokeScript(
            "param($path, $data, $output) if (-not (Get-Command Invoke-Pester -ErrorAction Ignore | Where-Object { $_.Module.Version -ge [version]'5.0' })) { Import-Module Pester -MinimumVersion 5.0 -ErrorAction Stop }; " +
            "$c = New-PesterContainer -Path $path -Data $data; " +
            "$cfg = New-PesterConfiguration; $cfg.Run.Container = $c; $cfg.Run.PassThru = $true; $cfg.Output.Verbosity = $output; " +
            "Invoke-Pester -Configuration $cfg",
            useNewScope: true, writeToPipeline: System.Management.Automation.Runspaces.PipelineResultTypes.None, input: null, args: new object[] { checks, data, Output });
        foreach (var r in result) WriteObject(r);
    }
}
