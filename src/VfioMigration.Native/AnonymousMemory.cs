using System.Collections.Generic;

namespace VfioMigration.Core.Native;

/// <summary>
/// Anonymous memory the simulated kernel hands out for mmap(MAP_ANONYMOUS): real memory of this process,
/// reserved with MAP_NORESERVE so a large guest costs only the pages that are touched.
/// </summary>
internal static class AnonymousMemory
{
    private static readonly object s_lock = new();
    private static readonly Dictionary<nint, nint> s_mappings = new();

    public static nint Map(nint length, int flags)
    {
        int f = Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE | (flags & Libc.MAP_HUGETLB);
        nint address = Libc.mmap(0, (nuint)length, Libc.PROT_READ | Libc.PROT_WRITE, f, -1, 0);
        if (address == Libc.MAP_FAILED) return -Libc.errno;
        lock (s_lock) s_mappings[address] = length;
        return address;
    }

    /// <summary>Unmaps memory <see cref="Map"/> gave out; other addresses (device memory) are left alone.</summary>
    public static int Unmap(nint address, nint length)
    {
        lock (s_lock)
        {
            if (!s_mappings.Remove(address)) return 0;
        }
        return Libc.munmap(address, (nuint)length) == 0 ? 0 : -Libc.errno;
    }
}
