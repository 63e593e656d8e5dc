using System;
using System.Collections.Generic;
using System.Threading;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Dirty;

/// <summary>
/// Measure-DirtyRate underneath: reads (and so clears) a container's dirty bitmap over all its mappings
/// once to start clean, then once per interval, on the host's clock (the simulated host's clock when the
/// session is on it, so tests drive the sampling without waiting).
/// </summary>
public static class DirtyRateSampler
{
    /// <summary>Checks the request before anything is read: a positive interval no longer than the duration.</summary>
    public static int SampleCount(TimeSpan interval, TimeSpan duration)
    {
        if (interval <= TimeSpan.Zero || duration < interval)
            throw new VfioRuleException("BadInterval", $"-Interval ({interval}) must be positive and no longer than -Duration ({duration}).");
        return (int)Math.Floor(duration.TotalMilliseconds / interval.TotalMilliseconds);
    }

    /// <summary>The samples, as they are taken; ends early (without an exception) when cancelled.</summary>
    public static IEnumerable<DirtyRateSample> Sample(VfioContainer container, TimeSpan interval, TimeSpan duration, CancellationToken cancel = default)
    {
        int samples = SampleCount(interval, duration);
        var (iova, size) = container.ResolveRange();
        var clock = container.Host.Kernel.Clock;
        // The first read clears what was dirtied before the measurement began.
        container.GetDirtyBitmap(iova, size, cancel: cancel);
        var start = clock.Now;
        var previous = TimeSpan.Zero;
        for (int i = 1; i <= samples; i++)
        {
            var wait = interval * i - (clock.Now - start);
            if (!clock.Wait(wait, cancel)) yield break;
            var at = clock.Now - start;
            var bitmap = container.GetDirtyBitmap(iova, size, cancel: cancel);
            yield return new DirtyRateSample
            {
                Iteration = i,
                ContainerId = container.Id,
                Timestamp = bitmap.Timestamp,
                Interval = at - previous,
                Pages = bitmap.Pages,
                DirtyPages = bitmap.DirtyPages,
                PageSize = bitmap.PageSize,
                Scope = bitmap.Scope,
            };
            previous = at;
        }
    }
}
