using System;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Start-DirtyTracking and Stop-DirtyTracking: the same parameters, one ioctl flag apart; with -Device, a
/// device's own DMA log (VFIO_DEVICE_FEATURE_DMA_LOGGING_START/STOP) instead of a container's tracking.
/// </summary>
public abstract class DirtyTrackingCommandBase : ContainerCmdlet
{
    protected const string DeviceParameterSet = "Device";

    #region Parameters

    /// <summary>Devices whose own DMA log to start or stop, over the mappings of the container that holds each.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DeviceParameterSet)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    /// <summary>Return the containers (with -Device: the device logs started).</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    #endregion

    /// <summary>What ShouldProcess shows.</summary>
    protected abstract string Action { get; }

    /// <summary>The change to make.</summary>
    protected abstract void Apply(VfioContainer container);

    /// <summary>The change to make to a device's own log; what -PassThru writes, or null.</summary>
    protected abstract object? ApplyToDevice(VfioDevice device, VfioContainer container);

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        if (ParameterSetName == DeviceParameterSet)
        {
            foreach (string name in Device)
            {
                var device = OpenSessionDevice(name);
                if (device is null) continue;
                var container = VfioSession.Containers.First(c => c.HoldsDevice(name));
                if (!ShouldProcess(device.Name, $"{Action} in the device's own DMA log (over the mappings of container {container.Id})")) continue;
                try
                {
                    var result = ApplyToDevice(device, container);
                    if (PassThru && result is not null) WriteObject(result);
                }
                catch (Exception e) when (IsVfioError(e))
                {
                    WriteError(ErrorFor(e, name));
                }
            }
            return;
        }
        foreach (var c in SelectedContainers())
        {
            if (!ShouldProcess($"container {c.Id}", Action)) continue;
            try
            {
                Apply(c);
                if (PassThru) WriteObject(c);
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, c));
            }
        }
    }
}
