using System;
using System.Collections.Generic;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// A set of page numbers kept as sorted, disjoint half-open runs [Start, End). The simulated type1 driver
/// keeps a mapping's dirty pages here instead of in the kernel's dense per-mapping bitmap, so tracking a
/// 1 TiB mapping costs a few runs, not 32 MiB.
/// </summary>
internal sealed class PageRangeSet
{
    private readonly List<(ulong Start, ulong End)> _runs = new();

    /// <summary>The runs, sorted by start, none touching another.</summary>
    public IReadOnlyList<(ulong Start, ulong End)> Runs => _runs;

    public bool IsEmpty => _runs.Count == 0;

    /// <summary>How many pages the set holds.</summary>
    public ulong Count
    {
        get
        {
            ulong n = 0;
            foreach (var (s, e) in _runs) n += e - s;
            return n;
        }
    }

    public void Clear() => _runs.Clear();

    /// <summary>Adds pages [first, first + count).</summary>
    public void Add(ulong first, ulong count)
    {
        if (count == 0) return;
        ulong start = first, end = first + count;
        // The first run that ends at or after 'start' is the first one the new run can touch or overlap.
        int lo = 0, hi = _runs.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_runs[mid].End < start) lo = mid + 1;
            else hi = mid;
        }
        int i = lo, j = lo;
        while (j < _runs.Count && _runs[j].Start <= end)
        {
            start = Math.Min(start, _runs[j].Start);
            end = Math.Max(end, _runs[j].End);
            j++;
        }
        _runs.RemoveRange(i, j - i);
        _runs.Insert(i, (start, end));
    }

    /// <summary>True if the page is in the set.</summary>
    public bool Contains(ulong page)
    {
        int lo = 0, hi = _runs.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var (s, e) = _runs[mid];
            if (page < s) hi = mid - 1;
            else if (page >= e) lo = mid + 1;
            else return true;
        }
        return false;
    }
}
