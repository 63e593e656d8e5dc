using System;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Moves devices to a migration state along the kernel's own path, one arc at a time, and returns one
/// MigrationStep per arc. -WhatIf shows the path. A failed arc is reported with the state the device
/// stopped in; -RecoveryState names where to go then.
/// </summary>
[Cmdlet(VerbsCommon.Set, "VfioMigrationState", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationStep))]
public sealed class SetVfioMigrationStateCommand : DeviceCmdlet
{
    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs (Get-VfioDevice's Name binds by property).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    /// <summary>The state to reach.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [StateNameTransformation]
    public VfioMigrationState State { get; set; }

    /// <summary>Where to move the device if an arc fails (QEMU moves a failed source back to RUNNING).</summary>
    [Parameter]
    [StateNameTransformation]
    public VfioMigrationState? RecoveryState { get; set; }

    #endregion

    protected override void ProcessRecord() => ForEachDevice(Device, device =>
    {
        var path = DeviceMigration.Plan(device, State, out var current);
        if (path.Count == 0)
        {
            WriteVerbose($"{device.Name} is already in {MigrationFsm.Name(State)}.");
            return;
        }
        string route = string.Join(" -> ", new[] { current }.Concat(path).Select(MigrationFsm.Name));
        if (!ShouldProcess(device.Name, $"Migration state {route}")) return;
        try
        {
            WriteObject(DeviceMigration.SetState(device, State, RecoveryState), enumerateCollection: true);
        }
        catch (MigrationTransitionException e)
        {
            WriteObject(e.Completed, enumerateCollection: true);
            WriteError(new ErrorRecord(e, e.StoppedAt == VfioMigrationState.Error ? ErrorIds.DeviceInError : ErrorIds.TransitionFailed,
                ErrorCategory.DeviceError, device.Name) { ErrorDetails = new ErrorDetails(e.Message) });
        }
    });
}
