using System;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// A migration data fd (an anon inode file such as mtty's "mtty_mig", opened with stream_open): reads the
/// saving stream (O_RDONLY) or takes the resuming stream (O_WRONLY). The device keeps its own reference to
/// the session, so closing the fd does not end the session; the device ends it (mtty_disable_file), after
/// which the fd answers ENODEV.
/// </summary>
internal sealed class SimDataFile : SimFile
{
    // Poll bits of the kernel (uapi/asm-generic/poll.h) that libc's short list does not name.
    private const short POLLRDNORM = 0x040;
    private const short POLLWRNORM = 0x100;
    private const short POLLRDHUP = 0x2000;

    private readonly SimDevice _device;
    private readonly SimSaveSession? _saving;
    private readonly SimResumeSession? _resuming;

    public SimDataFile(SimDevice device, SimSaveSession saving) : base(device.Kernel)
    {
        _device = device;
        _saving = saving;
    }

    public SimDataFile(SimDevice device, SimResumeSession resuming) : base(device.Kernel)
    {
        _device = device;
        _resuming = resuming;
    }

    public override SimFileKind Kind => SimFileKind.MigrationData;

    public override string Name => $"{_device.Name} migration data ({(_saving is not null ? "saving" : "resuming")})";

    /// <summary>True for the fd of a saving session, false for a resuming one.</summary>
    public bool IsSaving => _saving is not null;

    public override int Ioctl(uint request, Span<byte> arg)
    {
        _device.Tick();
        // mtty's resume fops have no unlocked_ioctl; the save fops know only VFIO_MIG_GET_PRECOPY_INFO.
        if (_saving is null || request != VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO.Number) return -Errno.ENOTTY;
        return PrecopyInfo(arg);
    }

    public override int Ioctl(uint request, ulong value) =>
        _saving is not null && request == VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO.Number ? -Errno.EFAULT : -Errno.ENOTTY;

    /// <summary>mtty_precopy_ioctl: argsz, then the device state, then the session.</summary>
    private int PrecopyInfo(Span<byte> arg)
    {
        const int minsz = 24; // offsetofend(struct vfio_precopy_info, dirty_bytes)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var info = StructBytes.Read<vfio_precopy_info>(arg);
        if (info.argsz < minsz) return -Errno.EINVAL;
        if (!_device.IsInPreCopy) return -Errno.EINVAL;
        if (_saving!.Disabled) return -Errno.ENODEV;
        info.initial_bytes = (ulong)_saving.InitialBytes;
        info.dirty_bytes = (ulong)_saving.DirtyBytes;
        StructBytes.Write(arg, info);
        return 0;
    }

    public override long Read(Span<byte> buffer)
    {
        _device.Tick();
        if (_saving is null) return -Errno.EBADF; // opened O_WRONLY
        if (_saving.Disabled) return -Errno.ENODEV;
        int fault = _device.Kernel.Faults.TakeDataFault(_device.Name, saving: true, _device.MigrationState);
        if (fault != 0) return -fault;
        int n = _saving.Take(buffer);
        if (n == 0 && buffer.Length > 0 && !_saving.IsFinal && _device.PreCopyEndOfData == SimPreCopyEndOfData.Enomsg)
            return -Errno.ENOMSG;
        return n;
    }

    public override long Write(ReadOnlySpan<byte> buffer)
    {
        _device.Tick();
        if (_resuming is null) return -Errno.EBADF; // opened O_RDONLY
        int fault = _device.Kernel.Faults.TakeDataFault(_device.Name, saving: false, _device.MigrationState);
        if (fault != 0) return -fault;
        return _resuming.Write(buffer);
    }

    // stream_open() clears FMODE_PREAD/FMODE_PWRITE: positional I/O is ESPIPE.
    public override long Pread(Span<byte> buffer, long offset) => -Errno.ESPIPE;

    public override long Pwrite(ReadOnlySpan<byte> buffer, long offset) => -Errno.ESPIPE;

    /// <summary>
    /// mtty has no poll (the VFS answers DEFAULT_POLLMASK); the simulator answers as a driver with one does
    /// (mlx5vf_save_poll): readable when bytes are there or the stream has ended, RDHUP once the session ended.
    /// A resuming fd is always writable.
    /// </summary>
    public override short Poll(short events)
    {
        _device.Tick();
        short ready;
        if (_saving is null)
        {
            ready = (short)(Libc.POLLOUT | POLLWRNORM);
        }
        else if (_saving.Disabled)
        {
            ready = (short)(Libc.POLLIN | POLLRDNORM | POLLRDHUP);
        }
        else
        {
            ready = _saving.PendingBytes > 0 || _saving.IsFinal ? (short)(Libc.POLLIN | POLLRDNORM) : (short)0;
        }
        // POLLERR/POLLHUP are reported whether asked for or not.
        return (short)(ready & (events | Libc.POLLERR | Libc.POLLHUP));
    }
}
