using System;
using System.Collections.Generic;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// Faults the simulated host injects, for tests and rehearsals of failure handling: the k-th call of a
/// named ioctl fails with a chosen errno; reads and writes of migration data fds move at most N bytes;
/// a device falls into ERROR during a chosen state transition.
/// </summary>
public sealed class SimFaults
{
    private readonly List<IoctlFault> _ioctlFaults = new();
    private readonly Dictionary<string, int> _ioctlCalls = new(StringComparer.Ordinal);

    /// <summary>At most this many bytes per read/write on a migration data fd (0 = no limit).</summary>
    public int ShortTransferBytes { get; set; }

    /// <summary>Makes the <paramref name="nth"/> call (1-based, counted from now) of <paramref name="ioctlName"/> fail with <paramref name="errno"/>.</summary>
    public void FailIoctl(string ioctlName, int nth, int errno)
    {
        if (nth < 1) throw new ArgumentOutOfRangeException(nameof(nth), "Calls are counted from 1.");
        if (errno <= 0) throw new ArgumentOutOfRangeException(nameof(errno), "An errno is positive.");
        _ioctlCalls.TryGetValue(ioctlName, out int seen);
        _ioctlFaults.Add(new IoctlFault(ioctlName, seen + nth, errno));
    }

    /// <summary>The device named falls into ERROR when asked to go to <paramref name="toState"/> (a v2 state or a v1 device_state value).</summary>
    public void ErrorOnTransition(string deviceName, uint toState) => TransitionErrors.Add((deviceName, toState));

    /// <summary>(device, target state) pairs that make the device fall into ERROR; device models consult and consume them.</summary>
    internal List<(string Device, uint ToState)> TransitionErrors { get; } = new();

    /// <summary>Consumes a transition fault for a device, if one is set.</summary>
    internal bool TakeTransitionError(string deviceName, uint toState)
    {
        int i = TransitionErrors.FindIndex(t => string.Equals(t.Device, deviceName, StringComparison.OrdinalIgnoreCase) && t.ToState == toState);
        if (i < 0) return false;
        TransitionErrors.RemoveAt(i);
        return true;
    }

    /// <summary>Removes every fault.</summary>
    public void Clear()
    {
        _ioctlFaults.Clear();
        TransitionErrors.Clear();
        ShortTransferBytes = 0;
    }

    /// <summary>Counts a call of the ioctl and answers the errno to fail it with, or 0.</summary>
    internal int TakeIoctlFault(string ioctlName)
    {
        _ioctlCalls.TryGetValue(ioctlName, out int seen);
        _ioctlCalls[ioctlName] = ++seen;
        int i = _ioctlFaults.FindIndex(f => f.Name == ioctlName && f.Call == seen);
        if (i < 0) return 0;
        int errno = _ioctlFaults[i].Errno;
        _ioctlFaults.RemoveAt(i);
        return errno;
    }

    internal int ShortTransferLimit(SimFile file) => file.Kind == SimFileKind.MigrationData ? ShortTransferBytes : 0;

    private readonly record struct IoctlFault(string Name, int Call, int Errno);
}
