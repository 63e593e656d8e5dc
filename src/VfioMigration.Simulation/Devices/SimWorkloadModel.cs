using System;
using System.Collections.Generic;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// What a running device does over simulated time (<see cref="SimWorkload"/>): it changes its own state
/// at StateDirtyBytesPerSecond (one 64-byte block per 64 bytes) and writes guest pages at
/// GuestDirtyPagesPerSecond. Deterministic: the number of events is a function of the total running time
/// only (not of how often the device is ticked), and each event draws from sequences seeded by Seed.
/// </summary>
internal sealed class SimWorkloadModel
{
    private const ulong StatePurpose = 2;
    private const ulong GuestPagePurpose = 3;
    private const ulong LogPagePurpose = 4;

    /// <summary>More events than this per tick are treated as "everything changed" (bounded work per call).</summary>
    private const long MaxEventsPerTick = 1 << 20;

    private readonly SimWorkload _workload;
    private SimRandom _stateRandom;
    private SimRandom _guestRandom;
    private SimRandom _logRandom;
    private TimeSpan _lastTick;
    private long _runningTicks;
    private long _stateEvents;
    private long _pageEvents;

    public SimWorkloadModel(SimWorkload workload, TimeSpan now)
    {
        _workload = workload;
        _stateRandom = new SimRandom(SimRandom.Derive(workload.Seed, StatePurpose));
        _guestRandom = new SimRandom(SimRandom.Derive(workload.Seed, GuestPagePurpose));
        _logRandom = new SimRandom(SimRandom.Derive(workload.Seed, LogPagePurpose));
        _lastTick = now;
    }

    /// <summary>Simulated time the device has spent running (and open).</summary>
    public TimeSpan RunningTime => TimeSpan.FromTicks(_runningTicks);

    /// <summary>
    /// Brings the workload to <paramref name="now"/>. If the device ran since the last tick, its state
    /// blocks change in <paramref name="image"/>, and guest pages are written: one page drawn from
    /// <paramref name="mappedRanges"/> per event for <paramref name="writeMapped"/> (an mdev pinning it), and
    /// one drawn from <paramref name="loggedRanges"/> for <paramref name="writeLogged"/> (a DMA-logging device).
    /// </summary>
    public void Advance(TimeSpan now, bool running, SimStateImage image,
        IReadOnlyList<(ulong Iova, ulong Size)> mappedRanges, Action<ulong>? writeMapped,
        IReadOnlyList<(ulong Iova, ulong Length)> loggedRanges, Action<ulong>? writeLogged)
    {
        if (now <= _lastTick) return;
        long elapsed = (now - _lastTick).Ticks;
        _lastTick = now;
        if (!running) return;
        _runningTicks += elapsed;
        double seconds = _runningTicks / (double)TimeSpan.TicksPerSecond;

        long stateTarget = (long)Math.Floor(_workload.StateDirtyBytesPerSecond * seconds / SimStateImage.BlockSize);
        long stateNew = stateTarget - _stateEvents;
        _stateEvents = Math.Max(_stateEvents, stateTarget);
        for (long i = 0; i < Math.Min(stateNew, Math.Min(MaxEventsPerTick, 4L * image.BlockCount)); i++)
            image.ChangeRandomBlock(ref _stateRandom);

        long pageTarget = (long)Math.Floor(_workload.GuestDirtyPagesPerSecond * seconds);
        long pageNew = Math.Min(pageTarget - _pageEvents, MaxEventsPerTick);
        _pageEvents = Math.Max(_pageEvents, pageTarget);
        for (long i = 0; i < pageNew; i++)
        {
            if (writeMapped is not null && PickPage(ref _guestRandom, mappedRanges) is { } mapped) writeMapped(mapped);
            if (writeLogged is not null && PickPage(ref _logRandom, loggedRanges) is { } logged) writeLogged(logged);
        }
    }

    /// <summary>A 4 KiB page drawn uniformly from the ranges, or null if they hold no page.</summary>
    private static ulong? PickPage(ref SimRandom random, IReadOnlyList<(ulong Start, ulong Size)> ranges)
    {
        const ulong page = 4096;
        ulong total = 0;
        foreach (var (_, size) in ranges) total += size / page;
        if (total == 0) return null;
        ulong pick = random.Below(total);
        foreach (var (start, size) in ranges)
        {
            ulong pages = size / page;
            if (pick < pages) return ((start + (page - 1)) & ~(page - 1)) + pick * page;
            pick -= pages;
        }
        return null;
    }
}
