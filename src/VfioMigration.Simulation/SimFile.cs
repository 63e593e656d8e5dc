using System;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation;

/// <summary>What kind of file a simulated descriptor refers to; ioctl numbers mean different things on each.</summary>
public enum SimFileKind
{
    Container,
    Group,
    Device,
    MigrationData,
    Anonymous,
    Iommufd,
}

/// <summary>
/// An open file of the simulated kernel, like a <c>struct file</c> with its <c>file_operations</c>.
/// Each method answers as the kernel's handler does: a result, or a negated errno. The defaults are
/// what the kernel answers for an operation the file does not implement.
/// </summary>
internal abstract class SimFile
{
    protected SimFile(SimulatedKernel kernel) => Kernel = kernel;

    public SimulatedKernel Kernel { get; }

    public abstract SimFileKind Kind { get; }

    /// <summary>What the file is, for the kernel's own bookkeeping ("/dev/vfio/7", "0000:3b:00.0").</summary>
    public abstract string Name { get; }

    /// <summary>ioctl with a pointer argument; <paramref name="arg"/> is the caller's struct.</summary>
    public virtual int Ioctl(uint request, Span<byte> arg) => -Errno.ENOTTY;

    /// <summary>ioctl with an integer argument.</summary>
    public virtual int Ioctl(uint request, ulong value) => -Errno.ENOTTY;

    public virtual long Pread(Span<byte> buffer, long offset) => -Errno.EINVAL;

    public virtual long Pwrite(ReadOnlySpan<byte> buffer, long offset) => -Errno.EINVAL;

    public virtual long Read(Span<byte> buffer) => -Errno.EINVAL;

    public virtual long Write(ReadOnlySpan<byte> buffer) => -Errno.EINVAL;

    /// <summary>mmap of the file: the address of memory the file owns, or -errno. munmap never frees it.</summary>
    public virtual nint Mmap(nint length, long offset, int prot, int flags) => -Errno.ENODEV;

    /// <summary>poll: the ready events among <paramref name="events"/>.</summary>
    public virtual short Poll(short events) => 0;

    /// <summary>The last close of the descriptor (the kernel's release()).</summary>
    public virtual void Release() { }

    /// <summary>The C name of an ioctl request as this kind of file understands it (numbers are shared).</summary>
    public virtual string IoctlName(uint request) => SimIoctlNames.For(Kind, request);
}

/// <summary>Names of ioctl numbers per kind of file, for fault injection and the kernel's log.</summary>
internal static class SimIoctlNames
{
    public static string For(SimFileKind kind, uint request)
    {
        if (kind == SimFileKind.Iommufd)
        {
            foreach (var r in IommufdIoctl.All)
                if (r.Number == request) return r.Name;
            return $"ioctl 0x{request:X}";
        }
        foreach (var r in VfioIoctl.All)
        {
            if (r.Number != request) continue;
            bool fits = kind switch
            {
                SimFileKind.Container => r.Name.StartsWith("VFIO_IOMMU_", StringComparison.Ordinal) || r.Name is "VFIO_GET_API_VERSION" or "VFIO_CHECK_EXTENSION" or "VFIO_SET_IOMMU",
                SimFileKind.Group => r.Name.StartsWith("VFIO_GROUP_", StringComparison.Ordinal),
                SimFileKind.Device => r.Name.StartsWith("VFIO_DEVICE_", StringComparison.Ordinal),
                SimFileKind.MigrationData => r.Name.StartsWith("VFIO_MIG_", StringComparison.Ordinal),
                _ => false,
            };
            if (fits) return r.Name;
        }
        return $"ioctl 0x{request:X}";
    }
}
