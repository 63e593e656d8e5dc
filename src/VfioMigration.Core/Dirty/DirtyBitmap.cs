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

    /// <summary>The IOMMU's own dirty bits (iommufd: IOMMU_HWPT_GET_DIRTY_BITMAP on a dirty-tracking HWPT): the pages devices wrote.</summary>
    IommuHardware,
}

/// <summary>A contiguous run of dirty pages.</summary>
public sealed class DirtyRange
{
    public required Iova Iova { get; init; }

    public required ulong Size { get; init; }

    public required ulong Pages { get; init; }

    public override string ToString() => $"{Iova}+0x{Size:x}";
}

/// <summary>A range of IOVA that a DMA mapping covered when a bitmap was read.</summary>
public readonly record struct MappedRange(ulong Iova, ulong Size)
{
    public ulong End => Iova + Size;

    public override string ToString() => $"0x{Iova:x}+0x{Size:x}";
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
    }

    /// <summary>First byte of the range.</summary>
    public Iova Iova { get; }

    /// <summary>Bytes covered.</summary>
    public ulong Size { get; }

    /// <summary>Bytes per bit.</summary>
    public ulong PageSize { get; }

    /// <summary>Pages covered (bits).</summary>
    public ulong Pages { get; }

    /// <summary>Pages that read dirty (counted on first use, or while the runs are enumerated: one pass either way).</summary>
    public ulong DirtyPages
    {
        get
        {
            if (_dirtyPages is not { } n) (n, _) = Count();
            return n;
        }
    }

    /// <summary>Contiguous runs of dirty pages: how many ranges -AsRange returns (counted with DirtyPages, in the same pass).</summary>
    public ulong Runs
    {
        get
        {
            if (_runs is not { } n) (_, n) = Count();
            return n;
        }
    }

    // Set once; two threads that both count write the same values.
    private ulong? _dirtyPages;
    private ulong? _runs;

    private (ulong Pages, ulong Runs) Count()
    {
        var (pages, runs) = BitmapMath.CountBitsAndRuns(_words, Pages);
        (_dirtyPages, _runs) = (pages, runs);
        return (pages, runs);
    }

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

    /// <summary>
    /// The DMA mappings when the bitmap was read (a container's, or the ranges a device logs), in IOVA order
    /// (they may reach outside the bitmap's range), or null where that is not known (an older file): the
    /// heatmap shows the pages outside them as gaps. Shared, never copied: a read allocates nothing for it.
    /// Not a property PowerShell shows (Export-Csv of a bitmap stays one row of numbers): see <see cref="GetMappedRanges"/>.
    /// </summary>
    internal IReadOnlyList<MappedRange>? MappedRanges { get; init; }

    /// <summary>The mappings when the bitmap was read, in IOVA order, or null where they are not known.</summary>
    public MappedRange[]? GetMappedRanges() => MappedRanges is null ? null : new List<MappedRange>(MappedRanges).ToArray();

    /// <summary>The bitmap words (bit k = page Iova + k × PageSize).</summary>
    public ReadOnlySpan<ulong> GetWords() => _words.AsSpan(0, (int)BitmapMath.WordsFor(Pages));

    /// <summary>The bitmap words as an array (a copy), for PowerShell and other callers that cannot hold a span.</summary>
    public ulong[] ToArray() => GetWords().ToArray();

    /// <summary>The bitmap as bytes (a copy), little-endian as the kernel writes it: bit k of byte k/8 is page k.</summary>
    public byte[] ToBytes() => System.Runtime.InteropServices.MemoryMarshal.AsBytes(GetWords()).ToArray();

    /// <summary>True if the page holding <paramref name="address"/> is dirty.</summary>
    public bool IsDirty(Iova address)
    {
        if (address < Iova || address.Value - Iova.Value >= Size) return false;
        ulong bit = (address.Value - Iova.Value) / PageSize;
        return (_words[bit / 64] & (1UL << (int)(bit % 64))) != 0;
    }

    /// <summary>The dirty pages as contiguous runs, in IOVA order.</summary>
    public IReadOnlyList<DirtyRange> GetDirtyRanges() => new List<DirtyRange>(EnumerateDirtyRanges());

    /// <summary>
    /// The dirty pages as contiguous runs, in IOVA order, found as they are enumerated (a batch of runs at a
    /// time: memory stays bounded however many runs there are). With <paramref name="granularity"/> (bytes,
    /// a multiple of the page size), the bitmap is seen in blocks of that size: each range is a stretch of
    /// adjacent blocks holding at least one dirty page, aligned to the blocks (the last one clipped to the
    /// bitmap), and its Pages counts the dirty pages in it.
    /// </summary>
    public IEnumerable<DirtyRange> EnumerateDirtyRanges(ulong granularity = 0)
    {
        ulong blockPages = 1;
        if (granularity != 0)
        {
            if (granularity % PageSize != 0)
                throw new VfioRuleException("BadGranularity", $"a granularity of 0x{granularity:x} bytes is not a multiple of the page size 0x{PageSize:x}.");
            blockPages = granularity / PageSize;
        }
        return Enumerate(blockPages);
    }

    private IEnumerable<DirtyRange> Enumerate(ulong blockPages)
    {
        var scanner = new BitRunScanner(Pages);
        var batch = new BitRun[RunBatch];
        ulong first = 0, end = 0, dirty = 0, runs = 0;
        bool open = false;
        while (true)
        {
            int n = scanner.Read(_words, batch);
            for (int i = 0; i < n; i++)
            {
                var run = batch[i];
                if (blockPages == 1)
                {
                    runs++;
                    yield return Range(run.FirstBit, run.Length, run.Length);
                    continue;
                }
                ulong b0 = run.FirstBit / blockPages, b1 = (run.FirstBit + run.Length - 1) / blockPages + 1;
                if (open && b0 <= end)
                {
                    end = Math.Max(end, b1);
                    dirty += run.Length;
                    continue;
                }
                if (open) yield return Block(first, end, dirty, blockPages);
                (first, end, dirty, open) = (b0, b1, run.Length, true);
            }
            if (scanner.Done) break;
        }
        if (open) yield return Block(first, end, dirty, blockPages);
        _dirtyPages ??= scanner.SetBits;
        if (blockPages == 1) _runs ??= runs;
    }

    // Runs handed out per scan step: 64 KiB of them, whatever the bitmap's size.
    private const int RunBatch = 4096;

    private DirtyRange Range(ulong firstPage, ulong pages, ulong dirty) =>
        new() { Iova = Iova.Value + firstPage * PageSize, Size = pages * PageSize, Pages = dirty };

    private DirtyRange Block(ulong firstBlock, ulong endBlock, ulong dirty, ulong blockPages)
    {
        ulong firstPage = firstBlock * blockPages, endPage = Math.Min(endBlock * blockPages, Pages);
        return Range(firstPage, endPage - firstPage, dirty);
    }

    public override string ToString() => $"{Iova}+0x{Size:x}: {DirtyPages}/{Pages} dirty";
}
