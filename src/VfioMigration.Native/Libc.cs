using System;
using System.Runtime.InteropServices;

namespace VfioMigration.Core.Native;

/// <summary>
/// The libc functions the module calls, with their C names kept verbatim (Tmds.LibC style).
/// This class and the other files in Native/ are the only places with P/Invoke or unsafe code.
/// Every import sets the last error, so errno is read with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe partial class Libc
{
    /// <summary>The versioned soname: "libc.so" on Debian is a linker script, not a loadable library.</summary>
    internal const string LibraryName = "libc.so.6";

    internal const int O_RDONLY = 0x0;
    internal const int O_WRONLY = 0x1;
    internal const int O_RDWR = 0x2;
    internal const int O_CREAT = 0x40;
    internal const int O_EXCL = 0x80;
    internal const int O_NOCTTY = 0x100;
    internal const int O_NONBLOCK = 0x800;
    internal const int O_CLOEXEC = 0x80000;

    // statx(2): the same layout on every architecture, unlike struct stat (x86_64 and aarch64 differ).
    internal const int AT_FDCWD = -100;
    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_TYPE = 0x1;
    internal const uint STATX_MODE = 0x2;
    internal const uint STATX_SIZE = 0x200;
    internal const uint S_IFMT = 0xF000;
    internal const uint S_IFREG = 0x8000;
    internal const uint S_IFDIR = 0x4000;
    internal const uint S_IFIFO = 0x1000;
    internal const uint S_IFCHR = 0x2000;
    internal const uint S_IFBLK = 0x6000;
    internal const uint S_IFSOCK = 0xC000;
    internal const uint RENAME_NOREPLACE = 0x1;

    internal const int PROT_NONE = 0x0;
    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;
    internal const int MAP_SHARED = 0x01;
    internal const int MAP_PRIVATE = 0x02;
    internal const int MAP_ANONYMOUS = 0x20;
    internal const int MAP_NORESERVE = 0x4000;
    internal const int MAP_HUGETLB = 0x40000;
    internal const int MS_ASYNC = 1;
    internal static readonly nint MAP_FAILED = -1;

    internal const short POLLIN = 0x001;
    internal const short POLLOUT = 0x004;
    internal const short POLLERR = 0x008;
    internal const short POLLHUP = 0x010;

    [StructLayout(LayoutKind.Sequential)]
    internal struct pollfd
    {
        public int fd;
        public short events;
        public short revents;
    }

    // open(2) returns an int: it must not be declared as returning a SafeHandle, or -1 arrives as
    // 0x00000000FFFFFFFF, looks valid, and the next call fails with EBADF instead of the open error.
    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string pathname, int flags, int mode);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary>The fields of struct statx (linux/stat.h) the module reads; the kernel fills 256 bytes.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    internal struct statx_buf
    {
        [FieldOffset(0)] public uint stx_mask;
        [FieldOffset(28)] public ushort stx_mode;
        [FieldOffset(40)] public ulong stx_size;
    }

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statx(int dirfd, string pathname, int flags, uint mask, statx_buf* statxbuf);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int fsync(int fd);

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int unlink(string pathname);

    /// <summary>ioctl with a pointer argument (struct or buffer).</summary>
    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, void* argp);

    /// <summary>ioctl with an integer argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, ...).</summary>
    [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl_value(int fd, nuint request, nuint arg);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint pread(int fd, void* buf, nuint count, long offset);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint pwrite(int fd, [CType("const void *")] void* buf, nuint count, long offset);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint write(int fd, [CType("const void *")] void* buf, nuint count);

    [LibraryImport(LibraryName, SetLastError = true)]
    [return: CType("void *")]
    internal static partial nint mmap([CType("void *")] nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int munmap([CType("void *")] nint addr, nuint length);

    /// <summary>msync with MS_ASYNC only checks: ENOMEM if part of the range is not mapped (the simulator's pin check).</summary>
    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int msync([CType("void *")] nint addr, nuint length, int flags);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int poll(pollfd* fds, nuint nfds, int timeout);

    /// <summary>errno of the last import above, read right after the call.</summary>
    internal static int errno => Marshal.GetLastPInvokeError();
}

/// <summary>
/// The C type of an import's parameter or result where the C# declaration uses an integer of the same
/// size for a C pointer (mmap's address): the signature test compiles the libc call against this type.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter | AttributeTargets.ReturnValue)]
internal sealed class CTypeAttribute : Attribute
{
    public CTypeAttribute(string type) => Type = type;

    public string Type { get; }
}
