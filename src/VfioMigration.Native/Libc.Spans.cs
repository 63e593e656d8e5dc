using System;

namespace VfioMigration.Core.Native;

/// <summary>
/// The imports of <see cref="Libc"/> over spans and references instead of pointers, so that the layers
/// above (the Linux kernel behind the seam, the module's own files) call libc without unsafe code: this
/// project is the only one that allows it. Each returns what the C function returns; errno is
/// <see cref="Libc.errno"/>, read right after the call.
/// </summary>
internal static unsafe partial class Libc
{
    internal static int ioctl(int fd, nuint request, Span<byte> arg)
    {
        fixed (byte* p = arg) return ioctl(fd, request, p);
    }

    internal static nint pread(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer) return pread(fd, p, (nuint)buffer.Length, offset);
    }

    internal static nint pwrite(int fd, ReadOnlySpan<byte> buffer, long offset)
    {
        fixed (byte* p = buffer) return pwrite(fd, p, (nuint)buffer.Length, offset);
    }

    internal static nint read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer) return read(fd, p, (nuint)buffer.Length);
    }

    internal static nint write(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer) return write(fd, p, (nuint)buffer.Length);
    }

    internal static int poll(ref pollfd fds, int timeout)
    {
        fixed (pollfd* p = &fds) return poll(p, 1, timeout);
    }

    internal static int statx(int dirfd, string pathname, int flags, uint mask, out statx_buf statxbuf)
    {
        statx_buf b;
        int rc = statx(dirfd, pathname, flags, mask, &b);
        statxbuf = b;
        return rc;
    }
}
