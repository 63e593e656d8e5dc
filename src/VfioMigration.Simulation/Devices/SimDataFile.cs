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
        if (!_device.IsInPreCopy)
        {
            if (!AnswersAfterPreCopy) return -Errno.EINVAL;
            // A driver that does not check the state answers for the stopped device's stream: all of it "dirty".
            info.initial_bytes = 0;
            info.dirty_bytes = (ulong)_saving!.PendingBytes;
            StructBytes.Write(arg, info);
            return 0;
        }
        if (_saving!.Disabled) return -Errno.ENODEV;
        // The initial data left is what was offered minus what was read; a defective driver adds the two.
        info.initial_bytes = _device.Has(SimDefect.PrecopyInitialBytesGrow)
            ? (ulong)(_saving.InitialDataLength + _saving.BytesRead)
            : (ulong)_saving.InitialBytes;
        info.dirty_bytes = (ulong)_saving.DirtyBytes;
        StructBytes.Write(arg, info);
        return 0;
    }

    /// <summary>
    /// SimDefect.PrecopyInfoOutsidePrecopy: this is the fd of the device's pre-copy session, which went on into
    /// STOP_COPY, and the driver answers PRECOPY_INFO there as well.
    /// </summary>
    private bool AnswersAfterPreCopy =>
        _device.Has(SimDefect.PrecopyInfoOutsidePrecopy) && _device.MigrationState == VfioConstants.VFIO_DEVICE_STATE_STOP_COPY
        && _saving is { StartedInPreCopy: true, Disabled: false } && ReferenceEquals(_device.MigrationV2?.Saving, _saving);

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
        // The end of the stream (or of the pre-copy data there is for now) is 0; a defective driver fails it.
        if (n == 0 && buffer.Length > 0 && _device.Has(SimDefect.NoEndOfStream)) return -Errno.EIO;
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
