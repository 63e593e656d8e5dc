using System;
using System.Collections.Generic;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Saves a device's migration state to a file: the pre-copy rounds the device supports, then
/// stop-and-copy. The file is written under a temporary name (0600) and renamed only when complete; a
/// failed or cancelled save (Ctrl+C) leaves no file and moves the device back where it started.
/// </summary>
[Cmdlet(VerbsData.Save, "VfioDeviceState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(StateSaveResult))]
public sealed class SaveVfioDeviceStateCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>The device (PCI address or mdev UUID; Get-VfioDevice's Name binds by property): one device, one file.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "";

    /// <summary>The state file to write, or an existing folder: the file is then &lt;folder&gt;/&lt;device&gt;.state.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>At most this many pre-copy rounds before stop-and-copy (0: stop-and-copy only).</summary>
    [Parameter]
    [ValidateRange(0, 1000)]
    public int MaxPreCopyRounds { get; set; } = 1;

    /// <summary>Return the device to RUNNING after the save (it is left in STOP otherwise).</summary>
    [Parameter]
    public SwitchParameter Resume { get; set; }

    /// <summary>Overwrite an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    #endregion


    // Every file this call wrote: a second device piped to the same -Path must not replace the first's state.
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        if (System.IO.Directory.Exists(path)) path = System.IO.Path.Combine(path, Device + ".state");
        if (!_written.Add(path))
        {
            WriteError(RuleError($"'{path}' already holds the state of another device saved by this command: a state file holds one device. Give each device its own -Path, or a folder as -Path.",
                ErrorIds.OneDevicePerFile, ErrorCategory.InvalidArgument, Device));
            return;
        }
        var device = OpenSessionDevice(Device);
        if (device is null) return;
        if (!ShouldProcess(device.Name, $"Save the device state to {path} (the device stops{(Resume ? " and then runs again" : "")})")) return;
        var progress = new ProgressRecord(3, $"Save-VfioDeviceState {device.Name}", "starting");
        try
        {
            var result = DeviceState.Save(device, path, MaxPreCopyRounds, Resume, p => WriteTransferProgress(progress, p), StopToken, replace: Force);
            if (result.StopAfterPointOfNoReturn)
                WarnEvenIfStopped($"Ctrl+C came after '{result.Path}' was committed: the file is whole and was kept; {device.Name} is in {MigrationFsm.Name(result.FinalState)}.");
            WriteObject(result);
        }
        catch (MigrationFailedException e)
        {
            ReportAborted(e, device.Name);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, device.Name));
        }
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
    }
}
