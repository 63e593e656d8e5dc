using System;
using System.Collections.Generic;
using System.Linq;

namespace VfioMigration.Core.Dirty;

/// <summary>One VFIO_IOMMU_DIRTY_PAGES GET_BITMAP call of a plan: a range of whole mappings and the gaps between them.</summary>
public readonly record struct BitmapCall(ulong Iova, ulong Size)
{
    public ulong End => Iova + Size;
}

/// <summary>
/// The kernel's arithmetic for reading dirty pages, done before any call: which GET_BITMAP calls cover a
/// requested range. Each call covers whole mappings (the kernel refuses a range that bisects one) and
/// never asks for more bitmap than the kernel returns per call (max_dirty_bitmap_size, 256 MiB). The rule
/// for gaps: consecutive mappings share one call, across the gaps between them, as long as the call stays
/// within that limit. A gap costs the kernel nothing (it walks mappings, not pages) and its bits are part
/// of the result the caller allocates anyway (zeroed there by <see cref="ZeroUnwritten"/>); a call costs a
/// system call. So a range read needs
/// ceil(bitmap bytes / 256 MiB) calls at best, and one more only where a single mapping would not fit.
/// </summary>
public static class DirtyBitmapPlan
{
    public static IReadOnlyList<BitmapCall> Plan(IEnumerable<(ulong Iova, ulong Size)> mappings, ulong iova, ulong size, ulong pageSize, ulong maxBitmapBytes) =>
        PlanSorted(mappings.OrderBy(m => m.Iova).ToArray(), iova, size, pageSize, maxBitmapBytes);

    /// <summary><see cref="Plan"/> for mappings already in IOVA order (what a container keeps), without sorting or copying them.</summary>
    public static List<BitmapCall> PlanSorted(IReadOnlyList<(ulong Iova, ulong Size)> mappings, ulong iova, ulong size, ulong pageSize, ulong maxBitmapBytes)
    {
        CheckRange(iova, size, pageSize);
        ulong end = iova + size;
        ulong maxPages = maxBitmapBytes * 8;
        var calls = new List<BitmapCall>();
        ulong runStart = 0, runEnd = 0;
        bool inRun = false;
        for (int i = 0; i < mappings.Count; i++)
        {
            var (mIova, mSize) = mappings[i];
            ulong mEnd = mIova + mSize;
            if (mEnd <= iova || mIova >= end) continue;
            if (mIova < iova || mEnd > end)
            {
                throw new VfioRuleException("RangeCutsMapping",
                    $"range 0x{iova:x}+0x{size:x} cuts the mapping 0x{mIova:x}+0x{mSize:x}; the kernel reads whole mappings only. " +
                    $"Ask for a range that starts and ends on mapping boundaries (Get-VfioDmaMapping lists them).");
            }
            if (mSize / pageSize > maxPages)
            {
                throw new VfioRuleException("MappingTooLargeForOneCall",
                    $"the mapping 0x{mIova:x}+0x{mSize:x} has {mSize / pageSize} pages of 0x{pageSize:x} bytes, more than the {maxPages} one bitmap call can return " +
                    $"(max_dirty_bitmap_size {maxBitmapBytes} bytes), and the kernel does not read part of a mapping.");
            }
            // Joined to the call before it, across a gap too, while the call stays within what one call
            // returns: the kernel accepts a range that starts and ends on mapping boundaries whatever lies
            // between (a gap's bits come back 0), and the gap's bits are part of the result anyway.
            if (inRun && (mEnd - runStart) / pageSize <= maxPages)
            {
                runEnd = mEnd;
                continue;
            }
            if (inRun) calls.Add(new BitmapCall(runStart, runEnd - runStart));
            runStart = mIova;
            runEnd = mEnd;
            inRun = true;
        }
        if (inRun) calls.Add(new BitmapCall(runStart, runEnd - runStart));
        return calls;
    }

    /// <summary>
    /// Zeroes the words of a result that the kernel's GET_BITMAP calls of <paramref name="calls"/> will not
    /// write whole, so that the result needs no clearing pass of its own. The kernel (update_user_bitmap)
    /// writes each mapping's bits as whole u64 words from the word holding its first bit, bits past the
    /// mapping 0; where that first bit is not on a word boundary it ORs in what the word held. A mapping
    /// right after another (in the same call, mappings in IOVA order) finds there what its neighbour just
    /// wrote, which is right; one after a gap finds the gap's word. So what must read 0 beforehand is every
    /// word holding a bit of no mapping (the gaps, and the range around the mappings), and the whole of a
    /// call read into scratch and ORed in (one that starts mid-word). <paramref name="mappings"/> in IOVA
    /// order, as the plan took them.
    /// </summary>
    public static void ZeroUnwritten(Span<ulong> words, IReadOnlyList<(ulong Iova, ulong Size)> mappings, IReadOnlyList<BitmapCall> calls,
        ulong iova, ulong size, ulong pageSize)
    {
        ulong pages = size / pageSize, end = iova + size;
        ulong covered = 0;   // first bit not yet known to be written by a mapping
        for (int i = 0; i < mappings.Count; i++)
        {
            var (mIova, mSize) = mappings[i];
            if (mIova + mSize <= iova || mIova >= end) continue;
            ulong first = (mIova - iova) / pageSize;
            if (first > covered) ZeroBits(words, covered, first);
            covered = first + mSize / pageSize;
        }
        if (covered < pages) ZeroBits(words, covered, pages);
        foreach (var call in calls)
        {
            ulong firstBit = (call.Iova - iova) / pageSize;
            if (firstBit % 64 != 0) ZeroBits(words, firstBit, firstBit + call.Size / pageSize);
        }
    }

    /// <summary>Zeroes every word that holds a bit of [<paramref name="from"/>, <paramref name="to"/>).</summary>
    private static void ZeroBits(Span<ulong> words, ulong from, ulong to)
    {
        if (to <= from) return;
        int w0 = (int)(from / 64), w1 = (int)((to - 1) / 64);
        words.Slice(w0, w1 - w0 + 1).Clear();
    }

    /// <summary>The alignment rules of a dirty-bitmap range (kernel-interface.md c.2), with sentences instead of EINVAL.</summary>
    public static void CheckRange(ulong iova, ulong size, ulong pageSize)
    {
        if (pageSize == 0 || (pageSize & (pageSize - 1)) != 0)
            throw new VfioRuleException("BadPageSize", $"page size 0x{pageSize:x} is not a power of two.");
        if (size == 0)
            throw new VfioRuleException("RangeEmpty", "the range is empty (size 0); the kernel refuses a bitmap of no pages.");
        if (iova % pageSize != 0)
            throw new VfioRuleException("RangeNotAligned", $"IOVA 0x{iova:x} is not aligned to the dirty-tracking page size 0x{pageSize:x}.");
        if (size % pageSize != 0)
            throw new VfioRuleException("RangeNotAligned", $"size 0x{size:x} is not a multiple of the dirty-tracking page size 0x{pageSize:x}.");
        if (iova + size < iova)
            throw new VfioRuleException("RangeWraps", $"range 0x{iova:x}+0x{size:x} wraps around the end of the address space.");
    }
}
