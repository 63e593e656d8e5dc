using System;
using System.IO;
using System.Linq;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Native;

/// <summary>
/// The seam's implementation on this machine's Linux kernel: each call is the libc call of the same
/// name. A call interrupted by a signal (EINTR) is retried; every other failure is returned as -errno.
/// </summary>
public sealed class LinuxKernel : IVfioKernel
{
    public static LinuxKernel Instance { get; } = new();

    private LinuxKernel() { }

    public HostKind Kind => HostKind.Linux;

    // The release as uname -r prints it (6.12.117+deb12-amd64): Environment.OSVersion parses it into a
    // version and prints "6.12.117.12", a kernel nobody runs, into every object and CSV row.
    public string Description { get; } = "this machine (Linux " + Release() + ")";

    private static string Release()
    {
        try { return System.IO.File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); }
        catch (Exception e) when (e is System.IO.IOException or UnauthorizedAccessException) { return Environment.OSVersion.Version.ToString(); }
    }

    public IHostFiles Files { get; } = new LinuxFiles();

    public IHostClock Clock => MonotonicClock.Instance;

    public int Open(string path, int flags)
    {
        while (true)
        {
            int fd = Libc.open(path, flags | Libc.O_CLOEXEC, 0);
            if (fd >= 0) return fd;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public int Close(int fd)
    {
        // close(2) must not be retried on EINTR: the descriptor is released either way on Linux.
        int rc = Libc.close(fd);
        return rc == 0 ? 0 : -Libc.errno;
    }

    public int Ioctl(int fd, uint request, Span<byte> arg)
    {
        while (true)
        {
            int rc = Libc.ioctl(fd, request, arg);
            if (rc >= 0) return rc;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public int Ioctl(int fd, uint request, ulong value)
    {
        while (true)
        {
            int rc = Libc.ioctl_value(fd, request, (nuint)value);
            if (rc >= 0) return rc;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public long Pread(int fd, Span<byte> buffer, long offset)
    {
        while (true)
        {
            nint n = Libc.pread(fd, buffer, offset);
            if (n >= 0) return n;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset)
    {
        while (true)
        {
            nint n = Libc.pwrite(fd, buffer, offset);
            if (n >= 0) return n;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public long Read(int fd, Span<byte> buffer)
    {
        while (true)
        {
            nint n = Libc.read(fd, buffer);
            if (n >= 0) return n;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public long Write(int fd, ReadOnlySpan<byte> buffer)
    {
        while (true)
        {
            nint n = Libc.write(fd, buffer);
            if (n >= 0) return n;
            int e = Libc.errno;
            if (e != Errno.EINTR) return -e;
        }
    }

    public nint Mmap(nint length, long offset, int prot, int flags, int fd)
    {
        nint address = Libc.mmap(0, (nuint)length, prot, flags, fd, offset);
        return address == Libc.MAP_FAILED ? -Libc.errno : address;
    }

    public int Munmap(nint address, nint length) =>
        Libc.munmap(address, (nuint)length) == 0 ? 0 : -Libc.errno;

    public int Poll(int fd, short events, int timeoutMs, out short revents)
    {
        var p = new Libc.pollfd { fd = fd, events = events };
        while (true)
        {
            int rc = Libc.poll(ref p, timeoutMs);
            if (rc >= 0)
            {
                revents = p.revents;
                return rc;
            }
            int e = Libc.errno;
            if (e != Errno.EINTR)
            {
                revents = 0;
                return -e;
            }
        }
    }

    /// <summary>sysfs, /dev and /proc read with the framework's file APIs (no libc needed).</summary>
    private sealed class LinuxFiles : IHostFiles
    {
        // File.Exists is true for device nodes (/dev/vfio/vfio) as well as regular files.
        public bool Exists(string path) => File.Exists(path) || Directory.Exists(path);

        public bool DirectoryExists(string path) => Directory.Exists(path);

        public string? ReadText(string path)
        {
            try { return File.ReadAllText(path).TrimEnd('\n'); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        }

        public string[] List(string path)
        {
            try
            {
                return Directory.EnumerateFileSystemEntries(path).Select(Path.GetFileName).OfType<string>()
                    .OrderBy(n => n, StringComparer.Ordinal).ToArray();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Array.Empty<string>(); }
        }

        public string? ReadLink(string path)
        {
            try { return new FileInfo(path).LinkTarget; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        }
    }
}
