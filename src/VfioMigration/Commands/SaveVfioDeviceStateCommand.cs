using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Saves a device's migration state to a file: the pre-copy rounds the device supports, then
/// stop-and-copy. The file is written under a temporary name and renamed only when complete; a failed or
/// cancelled save (Ctrl+C) leaves no file and moves the device back to RUNNING.
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
        if (System.IO.File.Exists(path) && !Force)
        {
            WriteError(RuleError($"'{path}' exists; use -Force to overwrite it.", "FileExists", ErrorCategory.ResourceExists, path));
            return;
        }
        ForEachDevice(device =>
        {
            if (!ShouldProcess(device.Name, $"Save the device state to {path} (the device stops{(Resume ? " and then runs again" : "")})")) return;
            var progress = new ProgressRecord(3, $"Save-VfioDeviceState {device.Name}", "starting");
            try
            {
                WriteObject(DeviceState.Save(device, path, MaxPreCopyRounds, Resume, p =>
                {
                    progress.StatusDescription = $"{p.Phase}: {Readable.Bytes(p.Moved)} moved" + (p.Pending is { } left ? $", {Readable.Bytes(left)} pending" : "");
                    WriteProgress(progress);
                }, StopToken));
            }
            catch (OperationCanceledException)
            {
                WriteWarning($"The save of {device.Name} was cancelled: no file was written and the device was moved back to RUNNING.");
            }
            catch (MigrationTransitionException e)
            {
                WriteError(new ErrorRecord(e, e.StoppedAt == VfioMigrationState.Error ? "DeviceInError" : "TransitionFailed", ErrorCategory.DeviceError, device.Name)
                    { ErrorDetails = new ErrorDetails(e.Message + " No state file was written.") });
            }
            finally
            {
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
            }
        });
    }
}
