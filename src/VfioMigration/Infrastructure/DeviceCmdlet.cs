using System;
using System.Collections.Generic;
using System.Management.Automation;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Cmdlets that act on open devices: a device's group must be in a container of this session, which
/// keeps the device open (its migration state and data sessions live as long as its descriptor).
/// </summary>
public abstract class DeviceCmdlet : VfioCmdlet
{
    /// <summary>
    /// Runs <paramref name="action"/> for each named device the session holds, tracing calls for -Verbose;
    /// a device that cannot be reached or fails gets a non-terminating error and the others go on. Each
    /// cmdlet declares its own device parameter (one name, or several where several make sense).
    /// </summary>
    protected void ForEachDevice(IEnumerable<string> names, Action<VfioDevice> action)
    {
        using var trace = TraceCalls();
        foreach (string name in names)
        {
            var device = OpenSessionDevice(name);
            if (device is null) continue;
            try { action(device); }
            catch (Exception e) when (IsVfioError(e)) { WriteError(ErrorFor(e, name)); }
        }
    }
}
