using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// A simulated VFIO host below the syscall seam. It answers open/ioctl/pread/pwrite/read/write/mmap/poll
/// with the bytes and errnos the Linux kernel gives for the same calls (type1 IOMMU with dirty tracking,
/// mdev pinned-page scope, v1-region and v2 devices), and shows a matching sysfs, /dev/vfio and /proc.
/// Code above the seam runs on it unchanged.
/// </summary>
public sealed class SimulatedKernel : IVfioKernel
{
    private readonly object _lock = new();
    private readonly Dictionary<int, SimFile> _files = new();
    private readonly Dictionary<int, SimGroup> _groups;

    public SimulatedKernel(SimHostConfiguration configuration)
    {
        configuration.Validate();
        Configuration = configuration;
        _groups = configuration.Groups.ToDictionary(g => g.Number, g => new SimGroup(this, g));
        Files = new SimHostFiles(this);
        Description = $"simulated host ({configuration.Name})";
    }

    /// <summary>The topology this host was built from.</summary>
    public SimHostConfiguration Configuration { get; }

    /// <summary>The clock that drives the devices' workloads.</summary>
    public SimClock Clock { get; } = new();

    IHostClock IVfioKernel.Clock => Clock;

    /// <summary>Faults to inject (failing ioctls, short transfers, devices falling into ERROR).</summary>
    public SimFaults Faults { get; } = new();

    public HostKind Kind => HostKind.Simulated;

    public string Description { get; }

    public IHostFiles Files { get; }

    /// <summary>The groups of the host.</summary>
    internal IReadOnlyDictionary<int, SimGroup> Groups => _groups;

    /// <summary>A device model by name (PCI address or UUID), for tests and fault injection.</summary>
    public SimDevice? FindDevice(string name) =>
        _groups.Values.SelectMany(g => g.Devices).FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Every device model of the host.</summary>
    public IEnumerable<SimDevice> Devices => _groups.Values.SelectMany(g => g.Devices);

    /// <summary>The lock every simulated system call runs under: the kernel's state changes one call at a time.</summary>
    internal object SyncRoot => _lock;

    public int Open(string path, int flags)
    {
        lock (_lock)
        {
            SimFile? file;
            if (path == VfioHost.ContainerPath)
            {
                file = new SimContainer(this);
            }
            else if (path == IommufdConstants.IommuPath && Configuration.Iommufd)
            {
                file = new Iommufd.SimIommufd(this);
            }
            else if (CdevDevice(path) is { } cdevDevice)
            {
                // vfio_device_fops_cdev_open: always succeeds; the bind decides.
                file = new Iommufd.SimDeviceCdev(this, cdevDevice);
            }
            else if (path.StartsWith("/dev/vfio/", StringComparison.Ordinal)
                     && int.TryParse(path.AsSpan("/dev/vfio/".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int number)
                     && _groups.TryGetValue(number, out var group) && group.HasDeviceNode)
            {
                int rc = group.OpenFile(out var groupFile);
                if (rc < 0) return rc;
                file = groupFile;
            }
            else
            {
                return -Errno.ENOENT;
            }
            return Install(file!);
        }
    }

    /// <summary>The device behind /dev/vfio/devices/vfioN on a host with the cdev, or null.</summary>
    private SimDevice? CdevDevice(string path)
    {
        const string prefix = IommufdConstants.DeviceCdevFolder + "/vfio";
        if (!Configuration.Iommufd || !path.StartsWith(prefix, StringComparison.Ordinal)
            || !int.TryParse(path.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return null;
        return Devices.FirstOrDefault(d => Configuration.CdevNumber(d.Config) == n);
    }

    /// <summary>Gives a new file the lowest free descriptor number, as the kernel does.</summary>
    internal int Install(SimFile file)
    {
        lock (_lock)
        {
            int fd = 3;
            while (_files.ContainsKey(fd)) fd++;
            _files[fd] = file;
            return fd;
        }
    }

    /// <summary>The file behind a descriptor of this host, or null (EBADF).</summary>
    internal SimFile? Lookup(int fd)
    {
        lock (_lock) return _files.TryGetValue(fd, out var f) ? f : null;
    }

    public int Close(int fd)
    {
        lock (_lock)
        {
            if (!_files.Remove(fd, out var file)) return -Errno.EBADF;
            // Each descriptor here is its own struct file: closing it is the last close.
            file.Release();
            return 0;
        }
    }

    public int Ioctl(int fd, uint request, Span<byte> arg)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            if (file is null) return -Errno.EBADF;
            int injected = Faults.TakeIoctlFault(file.IoctlName(request));
            if (injected != 0) return -injected;
            return file.Ioctl(request, arg);
        }
    }

    public int Ioctl(int fd, uint request, ulong value)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            if (file is null) return -Errno.EBADF;
            int injected = Faults.TakeIoctlFault(file.IoctlName(request));
            if (injected != 0) return -injected;
            return file.Ioctl(request, value);
        }
    }

    public long Pread(int fd, Span<byte> buffer, long offset)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            return file is null ? -Errno.EBADF : offset < 0 ? -Errno.EINVAL : file.Pread(buffer, offset);
        }
    }

    public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            return file is null ? -Errno.EBADF : offset < 0 ? -Errno.EINVAL : file.Pwrite(buffer, offset);
        }
    }

    public long Read(int fd, Span<byte> buffer)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            if (file is null) return -Errno.EBADF;
            int limit = Faults.ShortTransferLimit(file);
            return file.Read(limit > 0 && buffer.Length > limit ? buffer.Slice(0, limit) : buffer);
        }
    }

    public long Write(int fd, ReadOnlySpan<byte> buffer)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            if (file is null) return -Errno.EBADF;
            int limit = Faults.ShortTransferLimit(file);
            return file.Write(limit > 0 && buffer.Length > limit ? buffer.Slice(0, limit) : buffer);
        }
    }

    public nint Mmap(nint length, long offset, int prot, int flags, int fd)
    {
        if (length <= 0) return -Errno.EINVAL;
        if (fd == -1 && (flags & Libc.MAP_ANONYMOUS) != 0)
        {
            // Guest memory for DMA mappings is real anonymous memory of this process (reserved lazily,
            // so a 1 TiB guest costs nothing until touched): the module may read or write it as a VMM would.
            return AnonymousMemory.Map(length, flags);
        }
        lock (_lock)
        {
            var file = Lookup(fd);
            return file is null ? -Errno.EBADF : file.Mmap(length, offset, prot, flags);
        }
    }

    public int Munmap(nint address, nint length) => AnonymousMemory.Unmap(address, length);

    public int Poll(int fd, short events, int timeoutMs, out short revents)
    {
        lock (_lock)
        {
            var file = Lookup(fd);
            if (file is null)
            {
                revents = 0;
                return -Errno.EBADF;
            }
            revents = file.Poll(events);
            return revents != 0 ? 1 : 0;
        }
    }
}
