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
    private readonly List<DataFault> _dataFaults = new();
    private readonly Dictionary<(string Device, bool Saving, uint? State), int> _dataCalls = new();
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

    /// <summary>
    /// Makes the <paramref name="nth"/> read (<paramref name="saving"/>: a saving data fd) or write (a
    /// resuming one) of the named device's migration data fd, counted from now, fail with
    /// <paramref name="errno"/>; with <paramref name="inState"/> only calls made while the device is in that
    /// v2 state count (STOP_COPY = 3, RESUMING = 4, PRE_COPY = 6). A driver answers EIO when its hardware
    /// fails mid-stream, and a destination refuses bytes it cannot take (mtty: EFAULT, ENOMEM).
    /// </summary>
    public void FailDataTransfer(string deviceName, bool saving, int nth, int errno, uint? inState = null)
    {
        if (nth < 1) throw new ArgumentOutOfRangeException(nameof(nth), "Calls are counted from 1.");
        if (errno <= 0) throw new ArgumentOutOfRangeException(nameof(errno), "An errno is positive.");
        var key = (deviceName.ToLowerInvariant(), saving, inState);
        _dataCalls.TryGetValue(key, out int seen);
        _dataFaults.Add(new DataFault(key.Item1, saving, inState, seen + nth, errno));
    }

    /// <summary>Counts a data-fd read or write of a device in a state and answers the errno to fail it with, or 0.</summary>
    internal int TakeDataFault(string deviceName, bool saving, uint? state)
    {
        string device = deviceName.ToLowerInvariant();
        int errno = CountDataCall((device, saving, null));
        if (state is not null)
        {
            int inState = CountDataCall((device, saving, state));
            if (errno == 0) errno = inState;
        }
        return errno;
    }

    private int CountDataCall((string Device, bool Saving, uint? State) key)
    {
        _dataCalls.TryGetValue(key, out int seen);
        _dataCalls[key] = ++seen;
        int i = _dataFaults.FindIndex(f => f.Device == key.Device && f.Saving == key.Saving && f.State == key.State && f.Call == seen);
        if (i < 0) return 0;
        int errno = _dataFaults[i].Errno;
        _dataFaults.RemoveAt(i);
        return errno;
    }

    /// <summary>The device named falls into ERROR when asked to go to <paramref name="toState"/> (a v2 state or a v1 device_state value).</summary>
    public void ErrorOnTransition(string deviceName, uint toState) => TransitionErrors.Add((deviceName, toState));

    /// <summary>
    /// The device named refuses the arc into <paramref name="toState"/> once with <paramref name="errno"/> and
    /// stays where the arc started, as a driver whose step fails does (mtty_set_state): a destination that
    /// refuses a stream on RESUMING → STOP answers this way.
    /// </summary>
    public void RefuseTransition(string deviceName, uint toState, int errno)
    {
        if (errno <= 0) throw new ArgumentOutOfRangeException(nameof(errno), "An errno is positive.");
        _refusals.Add((deviceName, toState, errno));
    }

    private readonly List<(string Device, uint ToState, int Errno)> _refusals = new();

    /// <summary>Consumes a refusal of an arc for a device: its errno, or 0.</summary>
    internal int TakeTransitionRefusal(string deviceName, uint toState)
    {
        int i = _refusals.FindIndex(t => string.Equals(t.Device, deviceName, StringComparison.OrdinalIgnoreCase) && t.ToState == toState);
        if (i < 0) return 0;
        int errno = _refusals[i].Errno;
        _refusals.RemoveAt(i);
        return errno;
    }

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
        _dataFaults.Clear();
        _refusals.Clear();
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

    private readonly record struct DataFault(string Device, bool Saving, uint? State, int Call, int Errno);
}
