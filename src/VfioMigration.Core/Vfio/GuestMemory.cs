using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>Memory of this process that backs a DMA mapping, released once.</summary>
internal sealed class GuestMemory : IDisposable
{
    private readonly Action _release;
    private bool _released;

    private GuestMemory(ulong address, Action release)
    {
        Address = address;
        _release = release;
    }

    public ulong Address { get; }

    /// <summary>Anonymous (or huge-page) memory through the host's mmap, as a VMM allocates guest RAM.</summary>
    public static GuestMemory Anonymous(VfioHost host, ulong size, bool hugeTlb)
    {
        int flags = Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE | (hugeTlb ? Libc.MAP_HUGETLB : 0);
        nint address = host.Kernel.Mmap(checked((nint)size), 0, Libc.PROT_READ | Libc.PROT_WRITE, flags, -1);
        if (address < 0)
        {
            string why = hugeTlb && -address == Errno.ENOMEM
                ? "no huge pages are free: reserve them first (echo N > /proc/sys/vm/nr_hugepages)"
                : $"{size} bytes of guest memory";
            throw new VfioNativeException("mmap", (int)-address, hugeTlb ? "MAP_HUGETLB memory" : "anonymous memory", why);
        }
        return new GuestMemory((ulong)address, () => host.Kernel.Munmap(address, (nint)size));
    }

    /// <summary>A file mapped shared (the guest's RAM in a file, as with -object memory-backend-file).</summary>
    public static GuestMemory FromFile(string path, ulong size)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new VfioRuleException("BackingFileNotFound", $"the backing file '{path}' does not exist; create it first (for example: truncate -s <size> {path}).");
        if ((ulong)info.Length < size)
            throw new VfioRuleException("BackingFileTooSmall", $"the backing file '{path}' has {info.Length} bytes, fewer than the {size} to map.");
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
        var view = file.CreateViewAccessor(0, checked((long)size), MemoryMappedFileAccess.ReadWrite);
        ulong address = (ulong)view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (ulong)view.PointerOffset;
        return new GuestMemory(address, () => { view.Dispose(); file.Dispose(); });
    }

    public void Dispose()
    {
        if (_released) return;
        _released = true;
        _release();
    }
}
