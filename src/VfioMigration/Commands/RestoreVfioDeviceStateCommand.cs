using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Loads a state file into a device. The whole file is verified first (checksums, trailer, the kind of
/// device it was saved from); a corrupt, truncated or foreign file is refused and the device is left as
/// it was. The device ends in STOP, or RUNNING with -Resume.
/// </summary>
[Cmdlet(VerbsData.Restore, "VfioDeviceState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(StateRestoreResult))]
public sealed class RestoreVfioDeviceStateCommand : DeviceCmdlet
{
    #region Parameters

    /// <summary>The state file to load.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Move the device to RUNNING after loading (it is left in STOP otherwise).</summary>
    [Parameter]
    public SwitchParameter Resume { get; set; }

    #endregion


    protected override void ProcessRecord()
    {
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        if (!System.IO.File.Exists(path))
        {
            WriteError(RuleError($"The state file '{path}' does not exist.", "StateFileNotFound", ErrorCategory.ObjectNotFound, path));
            return;
        }
        ForEachDevice(device =>
        {
            if (!ShouldProcess(device.Name, $"Load the device state from {path} (the device's current state is replaced)")) return;
            var progress = new ProgressRecord(4, $"Restore-VfioDeviceState {device.Name}", "verifying");
            try
            {
                WriteObject(DeviceState.Restore(device, path, Resume, p =>
                {
                    progress.StatusDescription = $"{Readable.Bytes(p.Moved)} loaded, {Readable.Bytes(p.Pending ?? 0)} to go";
                    WriteProgress(progress);
                }, StopToken));
            }
            catch (OperationCanceledException)
            {
                WriteWarning($"The restore into {device.Name} was cancelled; a device left in RESUMING needs a reset (Reset-VfioDevice).");
            }
            finally
            {
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
            }
        });
    }
}
