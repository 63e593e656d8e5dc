using System;
using System.Diagnostics;
using System.Threading;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// The simulated host's clock, which drives its workloads (how fast devices dirty pages and state).
/// By default it follows the wall clock, so a person at a prompt sees time pass; tests switch it to
/// manual and advance it themselves, so every run dirties exactly the same pages.
/// </summary>
public sealed class SimClock : IHostClock
{
    private readonly object _lock = new();
    private readonly Stopwatch _wall = Stopwatch.StartNew();
    private TimeSpan _manual;
    private TimeSpan _wallOffset;
    private bool _isManual;

    /// <summary>Time since the host was created.</summary>
    public TimeSpan Now
    {
        get { lock (_lock) return _isManual ? _manual : _wall.Elapsed - _wallOffset; }
    }

    /// <summary>True when only <see cref="Advance"/> moves the clock.</summary>
    public bool IsManual
    {
        get { lock (_lock) return _isManual; }
    }

    /// <summary>Stops following the wall clock; time moves only through <see cref="Advance"/>.</summary>
    public void UseManualTime()
    {
        lock (_lock)
        {
            if (_isManual) return;
            _manual = _wall.Elapsed - _wallOffset;
            _isManual = true;
        }
    }

    /// <summary>Follows the wall clock again from the current time.</summary>
    public void UseWallClock()
    {
        lock (_lock)
        {
            if (!_isManual) return;
            _wallOffset = _wall.Elapsed - _manual;
            _isManual = false;
        }
    }

    /// <summary>In manual time a wait moves the clock at once (a test's sampling takes no wall time); else it waits.</summary>
    public bool Wait(TimeSpan duration, CancellationToken cancel)
    {
        if (cancel.IsCancellationRequested) return false;
        if (IsManual)
        {
            if (duration > TimeSpan.Zero) Advance(duration);
            return true;
        }
        return MonotonicClock.Instance.Wait(duration, cancel);
    }

    /// <summary>Moves manual time forward (in wall-clock mode, the offset moves instead).</summary>
    public void Advance(TimeSpan by)
    {
        if (by < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(by), "The clock only moves forward.");
        lock (_lock)
        {
            if (_isManual) _manual += by;
            else _wallOffset -= by;
        }
    }
}
