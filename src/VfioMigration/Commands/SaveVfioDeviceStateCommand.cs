using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Saves a device's migration state to a file: the pre-copy rounds the device supports, then
/// stop-and-copy. The file is written under a temporary name (0600) and renamed only when complete; a
/// failed or cancelled save (Ctrl+C) leaves no file and moves the device back where it started.
/// </summary>
[Cmdlet(VerbsData.Save, "VfioDeviceState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(StateSaveResult))]
public sealed class SaveVfioDeviceStateCommand : DeviceCmdlet
{
    #region Parameters

    /// <summary>The state file to write.</summary>
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


    protected override void ProcessRecord()
    {
        if (Device.Length > 1)
        {
            ThrowTerminatingError(RuleError("A state file holds one device: save each device to its own -Path.", "OneDevicePerFile", ErrorCategory.InvalidArgument, Device));
        }
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        ForEachDevice(device =>
        {
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
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        });
    }
}
