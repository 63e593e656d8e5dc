using System;
using System.Buffers.Binary;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// The v1 migration region of the 5.8 series (VFIO_REGION_TYPE_MIGRATION / SUBTYPE_MIGRATION, a device
/// region at index 9): struct vfio_device_migration_info at offset 0 and a data section at
/// <see cref="DataOffset"/>, trapped (pread/pwrite) and mmappable (one sparse-mmap area). No in-tree
/// driver implemented v1, so the rules are the UAPI's (include/uapi/linux/vfio.h of 5.8, kernel-interface.md a.4):
/// fields at their natural width only, VALID() states only, the error state left only by reset,
/// pending_bytes → data_offset → data_size → data while saving, data_offset → data → data_size while resuming.
/// </summary>
internal sealed class SimMigrationV1Region : IDisposable
{
    /// <summary>The header page: the data section starts on the next page so it can be mmapped.</summary>
    public const long DataOffset = 0x1000;

    /// <summary>What a SimDefect.V1PendingNeverZero device still offers, per cycle, once its state is read.</summary>
    public const int EndlessChunkBytes = 0x1000;

    private const long DeviceStateOffset = 0, PendingBytesOffset = 8, DataOffsetOffset = 16, DataSizeOffset = 24;

    private readonly SimDevice _device;
    private readonly NativeBuffer _window;
    private uint _register = VFIO_DEVICE_STATE_V1_RUNNING;
    private bool _chunkStaged;
    private ulong _chunkSize;

    public SimMigrationV1Region(SimDevice device)
    {
        _device = device;
        // A window of whole pages: the state in one chunk when it is small, 1 MiB chunks when it is large.
        long state = Math.Max(1, device.Workload.StateSize);
        WindowSize = Math.Clamp((state + 0xFFF) & ~0xFFFL, 0x1000, 0x100000);
        // Device memory a user may mmap: it lives as long as the device (munmap does not free it).
        _window = new NativeBuffer(WindowSize);
    }

    /// <summary>Bytes of the data section (one chunk at most).</summary>
    public long WindowSize { get; }

    /// <summary>Region size: header page + data section.</summary>
    public long Size => DataOffset + WindowSize;

    /// <summary>The device_state register as read (bits 3..31 as the user last wrote them).</summary>
    public uint Register => _register;

    /// <summary>The R/S/U bits of device_state.</summary>
    public uint State => _register & VFIO_DEVICE_STATE_MASK;

    public SimSaveSession? Saving { get; private set; }

    public SimResumeSession? Resuming { get; private set; }

    /// <summary>_RUNNING is set (and the device is not in the error state).</summary>
    public bool IsRunning => (State & VFIO_DEVICE_STATE_V1_RUNNING) != 0 && !VFIO_DEVICE_STATE_IS_ERROR(State);

    /// <summary>Address of the data section's memory (what mmap returns).</summary>
    public nint WindowAddress => (nint)_window.Address;

    /// <summary>VFIO_DEVICE_RESET (or a fresh open): _RUNNING, no session, reserved bits cleared.</summary>
    public void Reset()
    {
        EndSessions();
        _register = VFIO_DEVICE_STATE_V1_RUNNING;
    }

    public void EndSessions()
    {
        Saving?.Disable();
        Saving = null;
        Resuming?.Disable();
        Resuming = null;
        _chunkStaged = false;
        _chunkSize = 0;
    }

    public void Dispose() => _window.Dispose();

    /// <summary>pread within the region: bytes read or -errno.</summary>
    public long Read(Span<byte> buffer, long offset)
    {
        if (offset >= DataOffset) return WindowAccess(offset, buffer.Length, out var window) < 0 ? -Errno.EINVAL : CopyOut(window, buffer);
        switch (offset, buffer.Length)
        {
            case (DeviceStateOffset, 4):
                BinaryPrimitives.WriteUInt32LittleEndian(buffer, _register);
                return 4;
            case (PendingBytesOffset, 8):
                BinaryPrimitives.WriteUInt64LittleEndian(buffer, ReadPendingBytes());
                return 8;
            case (DataOffsetOffset, 8):
                if (Saving is not null && !_chunkStaged) StageChunk();
                BinaryPrimitives.WriteUInt64LittleEndian(buffer, (ulong)DataOffset);
                return 8;
            case (DataSizeOffset, 8):
                BinaryPrimitives.WriteUInt64LittleEndian(buffer, Saving is not null && _chunkStaged ? _chunkSize : 0);
                return 8;
            default:
                // Only whole fields at their natural width and alignment (kernel-interface.md a.4).
                return -Errno.EINVAL;
        }
    }

    /// <summary>pwrite within the region: bytes written or -errno.</summary>
    public long Write(ReadOnlySpan<byte> buffer, long offset)
    {
        if (offset >= DataOffset)
        {
            if (WindowAccess(offset, buffer.Length, out var window) < 0) return -Errno.EINVAL;
            buffer.CopyTo(window);
            return buffer.Length;
        }
        switch (offset, buffer.Length)
        {
            case (DeviceStateOffset, 4):
            {
                int rc = SetState(BinaryPrimitives.ReadUInt32LittleEndian(buffer));
                return rc < 0 ? rc : 4;
            }
            case (DataSizeOffset, 8):
            {
                // Resuming: the user wrote a chunk at data_offset; writing data_size makes the device consume it.
                if (Resuming is null) return -Errno.EINVAL;
                ulong size = BinaryPrimitives.ReadUInt64LittleEndian(buffer);
                if (size > (ulong)WindowSize) return -Errno.EINVAL;
                long rc = Resuming.Write(_window.Slice(0, (int)size));
                return rc < 0 ? rc : 8;
            }
            default:
                // pending_bytes and data_offset are read-only; the rest of the header is not a field.
                return -Errno.EINVAL;
        }
    }

    /// <summary>mmap of the sparse area: the address for [offset, offset + length) of the region, or -errno.</summary>
    public nint Map(long offset, long length)
    {
        if (offset < DataOffset || length <= 0 || offset - DataOffset + length > WindowSize) return -Errno.EINVAL;
        return WindowAddress + (nint)(offset - DataOffset);
    }

    /// <summary>The sparse-mmap area of the region (the data section).</summary>
    public (ulong Offset, ulong Size) SparseArea => ((ulong)DataOffset, (ulong)WindowSize);

    /// <summary>
    /// Writes device_state: 0 or -errno. Reserved bits 3..31 are kept as written. Writing an invalid
    /// combination, or anything in the error state, is EINVAL and leaves the state alone.
    /// </summary>
    private int SetState(uint value)
    {
        uint old = State;
        uint target = value & VFIO_DEVICE_STATE_MASK;
        if (VFIO_DEVICE_STATE_IS_ERROR(old)) return -Errno.EINVAL;
        if (!VFIO_DEVICE_STATE_VALID(target))
        {
            const uint savingAndResuming = VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING;
            if (!_device.Has(SimDefect.V1InvalidStateAccepted) || (target & savingAndResuming) != savingAndResuming) return -Errno.EINVAL;
            // A driver without the VALID() check stores the bits. It can neither save nor resume in a state
            // that says both, so its streams end; SAVING|RESUMING alone reads as the error state from now on.
            EndSessions();
            _register = (value & ~VFIO_DEVICE_STATE_MASK) | target;
            return 0;
        }
        bool wasSaving = (old & VFIO_DEVICE_STATE_V1_SAVING) != 0, saving = (target & VFIO_DEVICE_STATE_V1_SAVING) != 0;
        bool wasResuming = (old & VFIO_DEVICE_STATE_V1_RESUMING) != 0, resuming = (target & VFIO_DEVICE_STATE_V1_RESUMING) != 0;
        bool running = (target & VFIO_DEVICE_STATE_V1_RUNNING) != 0;
        // Stop-and-copy cannot go back to pre-copy: the device already stopped and sent its final state.
        if (wasSaving && saving && (old & VFIO_DEVICE_STATE_V1_RUNNING) == 0 && running) return -Errno.EINVAL;
        if (target != old && _device.Kernel.Faults.TakeTransitionError(_device.Name, target))
        {
            EndSessions();
            _register = (value & ~VFIO_DEVICE_STATE_MASK) | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING;
            return -Errno.EIO;
        }
        // Resuming is null here only after an invalid state was accepted (SimDefect.V1InvalidStateAccepted).
        if (wasResuming && !resuming && Resuming is not null)
        {
            // Leaving _RESUMING loads what was written; a short or foreign stream fails the write and the
            // device stays in _RESUMING ("either the previous state or the error state").
            int rc = Resuming.Load();
            if (rc < 0) return rc;
            EndSessions();
        }
        if (wasSaving && !saving) EndSessions();
        if (saving && !wasSaving)
        {
            EndSessions();
            Saving = running
                ? SimSaveSession.StartPreCopy(_device.StateImage, _device.Workload.InitialBytes)
                : SimSaveSession.StartStopCopy(_device.StateImage);
        }
        else if (saving && !running)
        {
            // Saving is null here only after an invalid state was accepted (SimDefect.V1InvalidStateAccepted).
            Saving?.EnterStopCopy();
        }
        if (resuming && !wasResuming)
        {
            EndSessions();
            Resuming = new SimResumeSession(_device.StateImage, _device.Workload.InitialBytes);
        }
        _register = (value & ~VFIO_DEVICE_STATE_MASK) | target;
        return 0;
    }

    /// <summary>
    /// pending_bytes: starts an iteration (no side effect), or acknowledges the chunk staged by the
    /// data_offset read of this iteration. What is left to read now; in pre-copy it may be 0 and grow again.
    /// </summary>
    private ulong ReadPendingBytes()
    {
        if (Saving is null) return 0;
        if (_chunkStaged)
        {
            _chunkStaged = false;
            _chunkSize = 0;
        }
        long pending = Saving.PendingBytes;
        return pending == 0 && NeverDrains ? EndlessChunkBytes : (ulong)pending;
    }

    /// <summary>data_offset read while saving: the device copies the next chunk of its stream into the window.</summary>
    private void StageChunk()
    {
        _chunkSize = (ulong)Saving!.Take(_window.Span);
        if (_chunkSize == 0 && NeverDrains)
        {
            // The defective driver's stop-and-copy always has one more chunk, and it is zeros.
            _window.Slice(0, EndlessChunkBytes).Clear();
            _chunkSize = EndlessChunkBytes;
        }
        _chunkStaged = true;
    }

    /// <summary>SimDefect.V1PendingNeverZero in stop-and-copy (_SAVING without _RUNNING): the saving loop never reaches 0.</summary>
    private bool NeverDrains => _device.Has(SimDefect.V1PendingNeverZero) && State == VFIO_DEVICE_STATE_V1_SAVING && Saving is { IsFinal: true };

    private int WindowAccess(long offset, int length, out Span<byte> window)
    {
        window = default;
        long start = offset - DataOffset;
        if (start < 0 || length < 0 || start + length > WindowSize) return -Errno.EINVAL;
        window = _window.Slice(start, length);
        return 0;
    }

    private static long CopyOut(Span<byte> window, Span<byte> buffer)
    {
        window.CopyTo(buffer);
        return buffer.Length;
    }
}
