using System;

namespace VfioMigration.Core.Kernel;

/// <summary>Which kind of kernel answers the module's system calls.</summary>
public enum HostKind
{
    /// <summary>The Linux kernel of this machine, through libc.</summary>
    Linux,

    /// <summary>The simulated VFIO host that ships in this assembly.</summary>
    Simulated,
}

/// <summary>
/// The syscall-level seam. Everything above it (containers, bitmaps, migration) talks to a kernel
/// only through these calls, with the kernel's own byte layouts, and cannot tell which kernel answers:
/// the Linux kernel (<c>Native.LinuxKernel</c>) or the simulated one (<c>Simulation.SimulatedKernel</c>).
/// Calls return what the kernel returns: a non-negative result, or a negated errno (-EINVAL);
/// they do not throw for kernel errors. <see cref="VfioHost"/> turns them into exceptions.
/// </summary>
public interface IVfioKernel
{
    /// <summary>Which kernel this is.</summary>
    HostKind Kind { get; }

    /// <summary>What a person should read as the host's name, e.g. "this machine" or "simulated (lab.psd1)".</summary>
    string Description { get; }

    /// <summary>open(2): a new file descriptor, or -errno.</summary>
    int Open(string path, int flags);

    /// <summary>close(2): 0 or -errno.</summary>
    int Close(int fd);

    /// <summary>ioctl(2) whose argument is a pointer to <paramref name="arg"/> (a struct in the kernel's layout).</summary>
    int Ioctl(int fd, uint request, Span<byte> arg);

    /// <summary>ioctl(2) whose argument is an integer (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, ...).</summary>
    int Ioctl(int fd, uint request, ulong value);

    /// <summary>pread(2): bytes read, or -errno.</summary>
    long Pread(int fd, Span<byte> buffer, long offset);

    /// <summary>pwrite(2): bytes written, or -errno.</summary>
    long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset);

    /// <summary>read(2): bytes read (0 at end of stream), or -errno.</summary>
    long Read(int fd, Span<byte> buffer);

    /// <summary>write(2): bytes written, or -errno.</summary>
    long Write(int fd, ReadOnlySpan<byte> buffer);

    /// <summary>
    /// mmap(2) of <paramref name="fd"/> (or of anonymous memory when <paramref name="fd"/> is -1 and
    /// <paramref name="flags"/> has MAP_ANONYMOUS): the address, or -errno.
    /// </summary>
    nint Mmap(nint length, long offset, int prot, int flags, int fd);

    /// <summary>munmap(2): 0 or -errno.</summary>
    int Munmap(nint address, nint length);

    /// <summary>poll(2) on one descriptor: 1 with <paramref name="revents"/> set, 0 on time-out, or -errno.</summary>
    int Poll(int fd, short events, int timeoutMs, out short revents);

    /// <summary>The files discovery reads: sysfs, /dev/vfio and /proc, as this kernel shows them.</summary>
    IHostFiles Files { get; }

    /// <summary>
    /// The host's monotonic clock: what timed work above the seam (Measure-DirtyRate's sampling) waits on,
    /// so that the simulated host, whose clock tests can drive by hand, decides how time passes.
    /// </summary>
    IHostClock Clock { get; }
}

/// <summary>A monotonic clock that can be waited on.</summary>
public interface IHostClock
{
    /// <summary>Time since the host (or the process) started.</summary>
    TimeSpan Now { get; }

    /// <summary>Waits <paramref name="duration"/>; false if <paramref name="cancel"/> was cancelled first.</summary>
    bool Wait(TimeSpan duration, System.Threading.CancellationToken cancel);
}

/// <summary>The wall clock (Stopwatch), waited on with the cancellation token's handle.</summary>
public sealed class MonotonicClock : IHostClock
{
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    public static MonotonicClock Instance { get; } = new();

    public TimeSpan Now => _clock.Elapsed;

    public bool Wait(TimeSpan duration, System.Threading.CancellationToken cancel) =>
        duration <= TimeSpan.Zero ? !cancel.IsCancellationRequested : !cancel.WaitHandle.WaitOne(duration);
}

/// <summary>Read-only view of the host's pseudo-filesystems (sysfs, /dev, /proc) that discovery uses.</summary>
public interface IHostFiles
{
    /// <summary>True if a file or device node exists at the path.</summary>
    bool Exists(string path);

    /// <summary>True if a directory exists at the path.</summary>
    bool DirectoryExists(string path);

    /// <summary>The text of a (sysfs) file without its trailing newline, or null if it cannot be read.</summary>
    string? ReadText(string path);

    /// <summary>The names in a directory (sorted), or none if it does not exist.</summary>
    string[] List(string path);

    /// <summary>The target of a symbolic link, or null if the path is not a link.</summary>
    string? ReadLink(string path);
}
