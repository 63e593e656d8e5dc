using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// The calling process's address space, as the real kernel's page pinning sees it (pin_user_pages_remote
/// in vaddr_get_pfns): an address range can be pinned only if every byte lies in a mapping (VMA) that allows
/// the access, else the pin fails with EFAULT. The simulated kernel runs inside the caller's process, so it
/// reads that process's own /proc/self/maps.
/// </summary>
internal static class UserAddressSpace
{
    private static readonly object s_lock = new();
    private static Region[]? s_snapshot;

    private readonly record struct Region(ulong Start, ulong End, bool Read, bool Write);

    /// <summary>
    /// True if [address, address + length) is mapped with read (or, for <paramref name="write"/>, write) access.
    /// <paramref name="useCache"/> lets a hot path (pins by device models) accept a range a recent snapshot
    /// showed mapped; a miss always re-reads the maps. Where /proc is missing nothing can be checked: true.
    /// </summary>
    public static bool IsAccessible(ulong address, ulong length, bool write, bool useCache)
    {
        if (length == 0) return true;
        if (!Native.UserMemory.AccessOk(address, length)) return false;
        ulong last = address + length - 1;
        if (useCache)
        {
            Region[]? cached;
            lock (s_lock) cached = s_snapshot;
            if (cached is not null && Covers(cached, address, last, write)) return true;
        }
        var fresh = ReadMaps();
        if (fresh is null) return true;
        lock (s_lock) s_snapshot = fresh;
        return Covers(fresh, address, last, write);
    }

    private static bool Covers(Region[] regions, ulong address, ulong last, bool write)
    {
        // First region whose end is above the address.
        int lo = 0, hi = regions.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (regions[mid].End <= address) lo = mid + 1;
            else hi = mid;
        }
        ulong next = address;
        for (int i = lo; i < regions.Length; i++)
        {
            var r = regions[i];
            if (r.Start > next) return false;                       // a hole
            if (write ? !r.Write : !r.Read) return false;           // check_vma_flags: no VM_WRITE / VM_READ
            if (r.End == 0 || r.End - 1 >= last) return true;       // End == 0: the region reaches 2^64
            next = r.End;
        }
        return false;
    }

    private static Region[]? ReadMaps()
    {
        const string path = "/proc/self/maps";
        if (!File.Exists(path)) return null;
        var regions = new List<Region>(1024);
        try
        {
            using var reader = new StreamReader(path);
            string? line;
            while ((line = reader.ReadLine()) is not null)
            {
                // "7f3c1c000000-7f3c1c021000 rw-p 00000000 00:00 0   [heap]"
                var s = line.AsSpan();
                int dash = s.IndexOf('-');
                int space = s.IndexOf(' ');
                if (dash <= 0 || space <= dash || s.Length < space + 3) continue;
                if (!ulong.TryParse(s.Slice(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong start)) continue;
                if (!ulong.TryParse(s.Slice(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong end)) continue;
                regions.Add(new Region(start, end, s[space + 1] == 'r', s[space + 2] == 'w'));
            }
        }
        catch (IOException)
        {
            return null;
        }
        regions.Sort((a, b) => a.Start.CompareTo(b.Start));
        return regions.ToArray();
    }
}
