using System;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Cmdlets that act on an open device: the device's group must be in a container of this session, which
/// keeps the device open (its migration state and data sessions live as long as its descriptor).
/// </summary>
public abstract class DeviceCmdlet : VfioCmdlet
{
    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs (Get-VfioDevice's Name binds by property).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    #endregion

    /// <summary>
    /// Runs <paramref name="action"/> for each named device the session holds, tracing calls for -Verbose;
    /// a device that cannot be reached or fails gets a non-terminating error and the others go on.
    /// </summary>
    protected void ForEachDevice(Action<VfioDevice> action)
    {
        using var trace = TraceCalls();
        foreach (string name in Device)
        {
            var device = OpenSessionDevice(name);
            if (device is null) continue;
            try { action(device); }
            catch (Exception e) when (IsVfioError(e)) { WriteError(ErrorFor(e, name)); }
        }
    }

}
