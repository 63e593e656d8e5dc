using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using Microsoft.Win32.SafeHandles;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// The calling process's address space, as the real kernel's page pinning sees it (pin_user_pages_remote
/// in vaddr_get_pfns): a range can be pinned only if every byte lies in a mapping (VMA) that allows the
/// access (write for a device-writable mapping, else read), else the pin fails with EFAULT. The simulated
/// kernel runs inside the caller's process, so it asks about that process: msync(MS_ASYNC), which only
/// checks, answers exactly and cheaply whether the whole range is mapped; the permissions come from
/// /proc/self/maps, read afresh for a user's MAP_DMA and taken from the last reading (read again when it
/// does not cover the range) for the pins and writes of device models, which come often.
/// </summary>
internal static class UserAddressSpace
{
    private const ulong PageSize = 4096;
    private static readonly object s_lock = new();
    private static Region[]? s_snapshot;

    private readonly record struct Region(ulong Start, ulong End, bool Read, bool Write);

    /// <summary>
    /// True if [address, address + length) is mapped with read (or, for <paramref name="write"/>, write) access.
    /// <paramref name="fresh"/> reads the permissions now; otherwise a recent reading that covers the range will do.
    /// </summary>
    public static bool IsAccessible(ulong address, ulong length, bool write, bool fresh)
    {
        if (length == 0) return true;
        if (!UserMemory.AccessOk(address, length)) return false;
        ulong first = address & ~(PageSize - 1);
        ulong end = (address + length + PageSize - 1) & ~(PageSize - 1);
        if (Libc.msync((nint)first, (nuint)(end - first), Libc.MS_ASYNC) != 0) return false;

        ulong last = address + length - 1;
        if (!fresh)
        {
            Region[]? cached;
            lock (s_lock) cached = s_snapshot;
            if (cached is not null && Covers(cached, address, last, write)) return true;
        }
        var regions = ReadMaps();
        if (regions is null) return true;                       // no /proc: mapped is all that can be known
        lock (s_lock) s_snapshot = regions;
        return Covers(regions, address, last, write);
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
        // procfs reports no size: read until end of file, then parse the bytes (no string per line).
        byte[] text = ArrayPool<byte>.Shared.Rent(256 * 1024);
        int length = 0;
        try
        {
            using SafeFileHandle handle = File.OpenHandle("/proc/self/maps");
            while (true)
            {
                if (length == text.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(text.Length * 2);
                    text.AsSpan().CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(text);
                    text = larger;
                }
                int n = RandomAccess.Read(handle, text.AsSpan(length), length);
                if (n <= 0) break;
                length += n;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ArrayPool<byte>.Shared.Return(text);
            return null;
        }

        // "7f3c1c000000-7f3c1c021000 rw-p 00000000 00:00 0   [heap]"
        var regions = new List<Region>(1024);
        var all = text.AsSpan(0, length);
        while (!all.IsEmpty)
        {
            int eol = all.IndexOf((byte)'\n');
            var line = eol < 0 ? all : all.Slice(0, eol);
            all = eol < 0 ? Span<byte>.Empty : all.Slice(eol + 1);
            int at = 0;
            ulong start = Hex(line, ref at);
            if (at >= line.Length || line[at] != (byte)'-') continue;
            at++;
            ulong end = Hex(line, ref at);
            if (at + 2 >= line.Length || line[at] != (byte)' ') continue;
            regions.Add(new Region(start, end, line[at + 1] == (byte)'r', line[at + 2] == (byte)'w'));
        }
        ArrayPool<byte>.Shared.Return(text);
        regions.Sort((a, b) => a.Start.CompareTo(b.Start));
        return regions.ToArray();
    }

    private static ulong Hex(ReadOnlySpan<byte> line, ref int at)
    {
        ulong value = 0;
        for (; at < line.Length; at++)
        {
            int c = line[at];
            int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (digit < 0) break;
            value = (value << 4) | (uint)digit;
        }
        return value;
    }
}
