using System;
using System.IO;

namespace VfioMigration.Core.Native;

/// <summary>
/// One failed system call: which operation (the ioctl's C name, or open/read/pread/...), on what
/// (a path or a device name), and the errno the kernel (real or simulated) answered.
/// </summary>
public class VfioNativeException : IOException
{
    public VfioNativeException(string operation, int errno, string target, string? detail = null)
        : base(Format(operation, errno, target, detail))
    {
        Operation = operation;
        Errno = errno;
        Target = target;
        Detail = detail;
        HResult = errno;
    }

    /// <summary>The system call or ioctl name, e.g. "VFIO_IOMMU_DIRTY_PAGES(GET_BITMAP)".</summary>
    public string Operation { get; }

    /// <summary>The errno value, e.g. 22.</summary>
    public int Errno { get; }

    /// <summary>The C name of <see cref="Errno"/>, e.g. "EINVAL".</summary>
    public string ErrnoName => Native.Errno.Name(Errno);

    /// <summary>strerror text of <see cref="Errno"/>, e.g. "Invalid argument".</summary>
    public string ErrnoText => Native.Errno.Text(Errno);

    /// <summary>The path or device the call was made on.</summary>
    public string Target { get; }

    /// <summary>What the caller knows about why (may be null).</summary>
    public string? Detail { get; }

    private static string Format(string operation, int errno, string target, string? detail)
    {
        string text = $"{operation} on '{target}' failed: {Native.Errno.Text(errno)} ({Native.Errno.Name(errno)}, errno {errno})";
        return detail is null ? text + "." : text + ": " + detail;
    }
}
