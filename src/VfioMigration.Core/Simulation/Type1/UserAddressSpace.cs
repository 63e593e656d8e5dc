using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// The calling process's address space, as the real kernel's page pinning sees it (pin_user_pages_remote
/// in vaddr_get_pfns): a range can be pinned only if every byte lies in a mapping (VMA) that allows the
/// access (write for a device-writable mapping, else read), else the pin fails with EFAULT. The simulated
/// kernel runs inside the caller's process, so it asks about that process: msync(MS_ASYNC), which only
/// checks, answers exactly and cheaply whether the whole range is mapped; the permissions come from
/// /proc/self/maps, read again whenever the last snapshot does not cover the range.
/// </summary>
internal static class UserAddressSpace
{
    private const ulong PageSize = 4096;
    private static readonly object s_lock = new();
    private static Region[]? s_snapshot;

    private readonly record struct Region(ulong Start, ulong End, bool Read, bool Write);

    /// <summary>True if [address, address + length) is mapped with read (or, for <paramref name="write"/>, write) access.</summary>
    public static bool IsAccessible(ulong address, ulong length, bool write)
    {
        if (length == 0) return true;
        if (!UserMemory.AccessOk(address, length)) return false;
        ulong first = address & ~(PageSize - 1);
        ulong end = (address + length + PageSize - 1) & ~(PageSize - 1);
        if (Libc.msync((nint)first, (nuint)(end - first), Libc.MS_ASYNC) != 0) return false;

        ulong last = address + length - 1;
        Region[]? cached;
        lock (s_lock) cached = s_snapshot;
        if (cached is not null && Covers(cached, address, last, write)) return true;
        var fresh = ReadMaps();
        if (fresh is null) return true;                         // no /proc: mapped is all that can be known
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
            if (r.End - 1 >= last) return true;
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
