using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Loads a state file into a device. The file is opened once and verified through that descriptor
/// (checksums, trailer, the kind of device it was saved from); a corrupt, truncated or foreign file is
/// refused and the device is left as it was. The verified chunks are loaded, each checked again as it is
/// read. The device ends in STOP, or RUNNING with -Resume; a load that fails resets it.
/// </summary>
[Cmdlet(VerbsData.Restore, "VfioDeviceState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(StateRestoreResult))]
public sealed class RestoreVfioDeviceStateCommand : DeviceCmdlet
{
    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs (Get-VfioDevice's Name binds by property).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

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
        ForEachDevice(Device, device =>
        {
            if (!ShouldProcess(device.Name, $"Load the device state from {path} (the device's current state is replaced)")) return;
            var progress = new ProgressRecord(4, $"Restore-VfioDeviceState {device.Name}", "verifying");
            try
            {
                var result = DeviceState.Restore(device, path, Resume, p => WriteTransferProgress(progress, p, "loaded"), StopToken);
                if (result.StopAfterPointOfNoReturn)
                    WarnEvenIfStopped($"Ctrl+C came after {device.Name} had taken the state: the restore was kept; it is in {MigrationFsm.Name(result.FinalState)}.");
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
