using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// A device's own log of the guest pages it wrote by DMA (VFIO_DEVICE_FEATURE_DMA_LOGGING_*), as a
/// tracking driver keeps it (drivers/vfio/pci/mlx5/cmd.c mlx5vf_start_page_tracker /
/// mlx5vf_tracker_read_and_clear): one START at a time, a granularity the device chooses, REPORT reads
/// and clears. The core's argument checks are in <see cref="SimDeviceFeature"/>, as in vfio_main.c.
/// </summary>
internal sealed class SimDmaLog
{
    /// <summary>Smallest and largest granularity the simulated tracker offers (mlx5 reports its range in capabilities).</summary>
    public const int MinPageShift = 12;
    public const int MaxPageShift = 30;

    private readonly List<(ulong Iova, ulong Length)> _ranges = new();
    private readonly HashSet<ulong> _dirty = new();

    /// <summary>A START is in force.</summary>
    public bool Active { get; private set; }

    /// <summary>The granularity the device chose at START.</summary>
    public ulong PageSize { get; private set; }

    /// <summary>The ranges given at START.</summary>
    public IReadOnlyList<(ulong Iova, ulong Length)> Ranges => _ranges;

    /// <summary>Pages (at <see cref="PageSize"/>) written since they were last reported.</summary>
    public int DirtyPages => _dirty.Count;

    /// <summary>
    /// log_start after the core's checks: 0 or -errno; <paramref name="pageSize"/> becomes the granularity
    /// chosen. mlx5: a second START while tracking → EINVAL; the page size is ilog2(requested) clamped
    /// to what the device supports.
    /// </summary>
    public int Start(IReadOnlyList<(ulong Iova, ulong Length)> ranges, ref ulong pageSize)
    {
        if (Active) return -Errno.EINVAL;
        int shift = pageSize == 0 ? MinPageShift : BitOperations.Log2(pageSize);
        shift = Math.Clamp(shift, MinPageShift, MaxPageShift);
        pageSize = 1UL << shift;
        PageSize = pageSize;
        _ranges.Clear();
        _ranges.AddRange(ranges.OrderBy(r => r.Iova));
        _dirty.Clear();
        Active = true;
        return 0;
    }

    /// <summary>log_stop: always 0 (mlx5vf_stop_page_tracker returns 0 when not tracking).</summary>
    public int Stop()
    {
        Active = false;
        _ranges.Clear();
        _dirty.Clear();
        return 0;
    }

    /// <summary>The device wrote guest memory at <paramref name="iova"/>: logged if tracking covers it.</summary>
    public void RecordWrite(ulong iova)
    {
        if (!Active) return;
        foreach (var (start, length) in _ranges)
        {
            if (iova >= start && iova - start < length)
            {
                _dirty.Add(iova & ~(PageSize - 1));
                return;
            }
        }
    }

    /// <summary>
    /// log_read_and_clear over [iova, iova + length) into the user bitmap at <paramref name="bitmap"/>
    /// (one bit per <paramref name="reportPageSize"/> page, relative to <paramref name="iova"/>). Bits are only
    /// ever set (iova_bitmap_set), never cleared. Not tracking → EINVAL (mlx5); an unreachable bitmap → EFAULT.
    /// </summary>
    public int ReadAndClear(ulong iova, ulong length, ulong reportPageSize, ulong bitmap)
    {
        if (length == 0) return 0;
        ulong pages = (length - 1) / reportPageSize + 1;
        ulong bitmapBytes = (pages + 63) / 64 * 8;
        // iova_bitmap_alloc pins the user bitmap before the driver runs.
        if (bitmap == 0 || !UserMemory.AccessOk(bitmap, bitmapBytes)) return -Errno.EFAULT;
        if (!Active) return -Errno.EINVAL;
        ulong last = iova + (length - 1);
        var reported = _dirty.Where(p => p + (PageSize - 1) >= iova && p <= last).OrderBy(p => p).ToList();
        Span<byte> word = stackalloc byte[8];
        foreach (ulong page in reported)
        {
            ulong from = Math.Max(page, iova);
            ulong to = Math.Min(page + (PageSize - 1), last);
            for (ulong bit = (from - iova) / reportPageSize; bit <= (to - iova) / reportPageSize; bit++)
            {
                ulong address = bitmap + bit / 64 * 8;
                if (!UserMemory.CopyFromUser(word, address)) return -Errno.EFAULT;
                ulong value = BinaryPrimitives.ReadUInt64LittleEndian(word) | (1UL << (int)(bit % 64));
                BinaryPrimitives.WriteUInt64LittleEndian(word, value);
                if (!UserMemory.CopyToUser(address, word)) return -Errno.EFAULT;
            }
            _dirty.Remove(page);
        }
        return 0;
    }
}
