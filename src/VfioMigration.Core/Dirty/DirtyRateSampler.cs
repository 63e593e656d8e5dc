using System;
using System.Collections.Generic;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Dirty;

/// <summary>
/// Measure-DirtyRate underneath: reads (and so clears) a container's dirty bitmap over all its mappings,
/// or a device's DMA log over its logged ranges, once to start clean, then once per interval, on the host's clock (the simulated host's clock when the
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

    /// <summary>The samples of a container's dirty tracking, as they are taken; ends early (without an exception) when cancelled.</summary>
    public static IEnumerable<DirtyRateSample> Sample(VfioContainer container, TimeSpan interval, TimeSpan duration, CancellationToken cancel = default)
    {
        int samples = SampleCount(interval, duration);
        var (iova, size) = container.ResolveRange();
        return Sample(() => container.GetDirtyBitmap(iova, size, cancel: cancel), container.Host.Kernel.Clock, container.Id, null, samples, interval, cancel);
    }

    /// <summary>
    /// The samples of a device's own DMA log (DeviceDirtyLog.Read over the logged extent); the log must be
    /// running. <paramref name="containerId"/> is the container that holds the device.
    /// </summary>
    public static IEnumerable<DirtyRateSample> Sample(VfioDevice device, int containerId, TimeSpan interval, TimeSpan duration, CancellationToken cancel = default)
    {
        int samples = SampleCount(interval, duration);
        if (device.DmaLog is null)
            throw new VfioRuleException("DeviceLogNotStarted", $"{device.Name} is not logging its DMA: start it with Start-DirtyTracking -Device {device.Name}.");
        return Sample(() => DeviceDirtyLog.Read(device), device.Host.Kernel.Clock, containerId, device.Name, samples, interval, cancel);
    }

    private static IEnumerable<DirtyRateSample> Sample(Func<DirtyBitmap> read, IHostClock clock, int containerId, string? device,
        int samples, TimeSpan interval, CancellationToken cancel)
    {
        // The first read clears what was dirtied before the measurement began.
        read();
        var start = clock.Now;
        var previous = TimeSpan.Zero;
        for (int i = 1; i <= samples; i++)
        {
            var wait = interval * i - (clock.Now - start);
            if (!clock.Wait(wait, cancel)) yield break;
            var at = clock.Now - start;
            var bitmap = read();
            yield return new DirtyRateSample
            {
                Iteration = i,
                ContainerId = containerId,
                Device = device,
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
