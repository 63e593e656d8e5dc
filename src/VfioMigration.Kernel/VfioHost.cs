using System;
using System.Text;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Kernel;

/// <summary>
/// The host the module talks to: one <see cref="IVfioKernel"/> behind the seam, with calls that own
/// their descriptors (<see cref="SafeFd"/>) and throw <see cref="VfioNativeException"/> naming the
/// operation, the target and errno. Code above the seam uses this, never libc.
/// </summary>
public sealed class VfioHost
{
    public const string ContainerPath = "/dev/vfio/vfio";

    /// <summary>True for a PCI address as sysfs names devices, such as 0000:00:02.0 (domain:bus:device.function).</summary>
    public static bool IsPciAddress(string name) =>
        name.Length == 12 && name[4] == ':' && name[7] == ':' && name[10] == '.';

    public VfioHost(IVfioKernel kernel) => Kernel = kernel;

    /// <summary>The kernel behind the seam.</summary>
    public IVfioKernel Kernel { get; }

    /// <summary>Which kind of host this is (what every output object reports as its Host).</summary>
    public HostKind Kind => Kernel.Kind;

    /// <summary>Readable name of the host.</summary>
    public string Description => Kernel.Description;

    private int _lastContainerId;

    /// <summary>Numbers the containers opened on this host: 1, 2, ...</summary>
    public int NextContainerId() => System.Threading.Interlocked.Increment(ref _lastContainerId);

    /// <summary>Observer of every call through the seam (tracing for -Verbose, counting in benchmarks).</summary>
    public Action<SyscallRecord>? Trace { get; set; }

    public SafeFd Open(string path, int flags = Libc.O_RDWR)
    {
        int fd = Kernel.Open(path, flags);
        Report("open", path, fd);
        if (fd < 0) throw new VfioNativeException("open", -fd, path);
        return new SafeFd(Kernel, fd, path);
    }

    /// <summary>Wraps a descriptor the kernel returned through an ioctl (device fd, migration data fd).</summary>
    public SafeFd Adopt(int fd, string target) => new(Kernel, fd, target);

    /// <summary>ioctl with a struct argument; throws on failure. Returns the ioctl's non-negative result.</summary>
    public int Ioctl(SafeFd fd, IoctlRequest request, Span<byte> arg, string? detail = null)
    {
        int rc = TryIoctl(fd, request, arg, detail);
        if (rc < 0) throw new VfioNativeException(request.Name, -rc, fd.Target, detail);
        return rc;
    }

    /// <summary>ioctl with a struct argument; returns the result or -errno.</summary>
    public int TryIoctl(SafeFd fd, IoctlRequest request, Span<byte> arg, string? detail = null)
    {
        using var lease = new FdLease(fd);
        int rc = Kernel.Ioctl(lease.Number, request.Number, arg);
        Report(request.Name, fd.Target, rc, arg.Length, 0, detail);
        return rc;
    }

    /// <summary>ioctl with an integer argument; throws on failure.</summary>
    public int IoctlValue(SafeFd fd, IoctlRequest request, ulong value, string? detail = null)
    {
        int rc = TryIoctlValue(fd, request, value, detail);
        if (rc < 0) throw new VfioNativeException(request.Name, -rc, fd.Target, detail);
        return rc;
    }

    /// <summary>ioctl with an integer argument; returns the result or -errno.</summary>
    public int TryIoctlValue(SafeFd fd, IoctlRequest request, ulong value, string? detail = null)
    {
        using var lease = new FdLease(fd);
        int rc = Kernel.Ioctl(lease.Number, request.Number, value);
        Report(request.Name, fd.Target, rc, 0, value, detail ?? $"arg {value}");
        return rc;
    }

    public long Pread(SafeFd fd, Span<byte> buffer, long offset, string what = "pread")
    {
        long n = TryPread(fd, buffer, offset, what);
        if (n < 0) throw new VfioNativeException(what, (int)-n, fd.Target, $"{buffer.Length} bytes at offset 0x{offset:X}");
        return n;
    }

    public long Pwrite(SafeFd fd, ReadOnlySpan<byte> buffer, long offset, string what = "pwrite")
    {
        long n = TryPwrite(fd, buffer, offset, what);
        if (n < 0) throw new VfioNativeException(what, (int)-n, fd.Target, $"{buffer.Length} bytes at offset 0x{offset:X}");
        return n;
    }

    /// <summary>pread(2); returns bytes read or -errno.</summary>
    public long TryPread(SafeFd fd, Span<byte> buffer, long offset, string what = "pread")
    {
        long n;
        using (var lease = new FdLease(fd)) n = Kernel.Pread(lease.Number, buffer, offset);
        Report(what, fd.Target, n, buffer.Length, (ulong)offset);
        return n;
    }

    /// <summary>pwrite(2); returns bytes written or -errno.</summary>
    public long TryPwrite(SafeFd fd, ReadOnlySpan<byte> buffer, long offset, string what = "pwrite")
    {
        long n;
        using (var lease = new FdLease(fd)) n = Kernel.Pwrite(lease.Number, buffer, offset);
        Report(what, fd.Target, n, buffer.Length, (ulong)offset);
        return n;
    }

    /// <summary>read(2); returns bytes read or -errno (callers decide what ENOMSG/EAGAIN mean).</summary>
    public long TryRead(SafeFd fd, Span<byte> buffer)
    {
        long n;
        using (var lease = new FdLease(fd)) n = Kernel.Read(lease.Number, buffer);
        Report("read", fd.Target, n, buffer.Length);
        return n;
    }

    /// <summary>write(2); returns bytes written or -errno.</summary>
    public long TryWrite(SafeFd fd, ReadOnlySpan<byte> buffer)
    {
        long n;
        using (var lease = new FdLease(fd)) n = Kernel.Write(lease.Number, buffer);
        Report("write", fd.Target, n, buffer.Length);
        return n;
    }

    /// <summary>A NUL-terminated UTF-8 string argument (VFIO_GROUP_GET_DEVICE_FD takes the device name).</summary>
    public static byte[] CString(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    /// <summary>Keeps a descriptor from being closed by another thread while a call uses its number.</summary>
    private ref struct FdLease
    {
        private readonly SafeFd _fd;
        private readonly bool _added;

        public FdLease(SafeFd fd)
        {
            _fd = fd;
            _added = false;
            fd.DangerousAddRef(ref _added);
            Number = fd.Number;
        }

        public int Number { get; }

        public void Dispose()
        {
            if (_added) _fd.DangerousRelease();
        }
    }

    private void Report(string operation, string target, long result, int argBytes = 0, ulong value = 0, string? detail = null) =>
        Trace?.Invoke(new SyscallRecord(operation, target, result, argBytes, value, detail));
}

/// <summary>One call through the seam, as traced: what, on what, and the result (negative = -errno).</summary>
public readonly record struct SyscallRecord(string Operation, string Target, long Result, int ArgumentBytes, ulong Value, string? Detail = null)
{
    public override string ToString()
    {
        string call = Detail is null ? $"{Operation} on {Target}" : $"{Operation}({Detail}) on {Target}";
        return Result < 0 ? $"{call} -> -1 {Errno.Name((int)-Result)}" : $"{call} -> {Result}";
    }
}
