using System;
using System.Collections.Generic;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Dirty;

/// <summary>Which pages a dirty bitmap can report, as the kernel decides (kernel-interface.md c.3).</summary>
public enum DirtyScope
{
    /// <summary>An IOMMU-backed device is attached: the kernel cannot see its DMA and reports every mapped page dirty on every read.</summary>
    AllMappedPages,

    /// <summary>Every attached device pins the pages it uses: only pinned (and vfio_dma_rw-written) pages read dirty.</summary>
    PinnedPages,

    /// <summary>The device logged its own DMA writes (VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT).</summary>
    DeviceLog,
}

/// <summary>A contiguous run of dirty pages.</summary>
public sealed class DirtyRange
{
    public required Iova Iova { get; init; }

    public required ulong Size { get; init; }

    public required ulong Pages { get; init; }

    public override string ToString() => $"{Iova}+0x{Size:x}";
}

/// <summary>
/// What one read of dirty pages returned for a range of IOVA: one bit per page, relative to
/// <see cref="Iova"/>, with its summary. Reading cleared the kernel's record of these pages: this object
/// is now the only copy.
/// </summary>
public sealed class DirtyBitmap
{
    private readonly ulong[] _words;

    public DirtyBitmap(Iova iova, ulong size, ulong pageSize, ulong[] words, DirtyScope scope, HostKind hostKind, string host, DateTimeOffset timestamp)
    {
        if (pageSize == 0 || (pageSize & (pageSize - 1)) != 0) throw new ArgumentException("The page size must be a power of two.", nameof(pageSize));
        if (size % pageSize != 0) throw new ArgumentException("The size must be a whole number of pages.", nameof(size));
        Pages = size / pageSize;
        if ((ulong)words.LongLength < (Pages + 63) / 64) throw new ArgumentException("Too few words for the pages.", nameof(words));
        Iova = iova;
        Size = size;
        PageSize = pageSize;
        _words = words;
        Scope = scope;
        HostKind = hostKind;
        Host = host;
        Timestamp = timestamp;
        DirtyPages = BitmapMath.PopCount(words, Pages);
    }

    /// <summary>First byte of the range.</summary>
    public Iova Iova { get; }

    /// <summary>Bytes covered.</summary>
    public ulong Size { get; }

    /// <summary>Bytes per bit.</summary>
    public ulong PageSize { get; }

    /// <summary>Pages covered (bits).</summary>
    public ulong Pages { get; }

    /// <summary>Pages that read dirty.</summary>
    public ulong DirtyPages { get; }

    /// <summary>DirtyPages × PageSize.</summary>
    public ulong DirtyBytes => DirtyPages * PageSize;

    /// <summary>Share of the pages that read dirty, 0–100.</summary>
    public double DirtyPercent => Pages == 0 ? 0 : Math.Round(100.0 * DirtyPages / Pages, 3);

    /// <summary>Which pages the kernel could report (all mapped pages, pinned pages, or a device's log).</summary>
    public DirtyScope Scope { get; }

    /// <summary>When the bitmap was read.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>Linux or Simulated.</summary>
    public HostKind HostKind { get; }

    /// <summary>The host's name.</summary>
    public string Host { get; }

    /// <summary>The bitmap words (bit k = page Iova + k × PageSize).</summary>
    public ReadOnlySpan<ulong> GetWords() => _words.AsSpan(0, (int)BitmapMath.WordsFor(Pages));

    /// <summary>True if the page holding <paramref name="address"/> is dirty.</summary>
    public bool IsDirty(Iova address)
    {
        if (address < Iova || address.Value - Iova.Value >= Size) return false;
        ulong bit = (address.Value - Iova.Value) / PageSize;
        return (_words[bit / 64] & (1UL << (int)(bit % 64))) != 0;
    }

    /// <summary>The dirty pages as contiguous runs, in IOVA order.</summary>
    public IReadOnlyList<DirtyRange> GetDirtyRanges()
    {
        var runs = new List<DirtyRange>();
        ulong iova = Iova.Value, page = PageSize;
        BitmapMath.ForEachRun(_words, Pages, (first, length) =>
            runs.Add(new DirtyRange { Iova = iova + first * page, Size = length * page, Pages = length }));
        return runs;
    }

    public override string ToString() => $"{Iova}+0x{Size:x}: {DirtyPages}/{Pages} dirty";
}
