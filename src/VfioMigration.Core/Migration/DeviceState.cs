using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>Receives a chunk of a device's migration stream (a state file, a destination device).</summary>
public delegate void ChunkSink(MigrationPhase phase, ReadOnlySpan<byte> data);

/// <summary>Where a save or restore is, for Write-Progress.</summary>
public readonly record struct StateTransferProgress(MigrationPhase Phase, ulong Moved, ulong? Pending);

/// <summary>What Save-VfioDeviceState did.</summary>
public sealed class StateSaveResult
{
    public required string Device { get; init; }

    public required string Path { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    public required ulong PreCopyBytes { get; init; }

    public required ulong StopCopyBytes { get; init; }

    public ulong TotalBytes => PreCopyBytes + StopCopyBytes;

    /// <summary>Pre-copy rounds read (a round ends when the device has no more data for now).</summary>
    public required int PreCopyRounds { get; init; }

    public required TimeSpan TotalTime { get; init; }

    /// <summary>How long the device was stopped (from leaving a running state to the end, or to RUNNING again with -Resume).</summary>
    public required TimeSpan Downtime { get; init; }

    public required VfioMigrationState FinalState { get; init; }

    public required HostKind HostKind { get; init; }
}

/// <summary>What Restore-VfioDeviceState did.</summary>
public sealed class StateRestoreResult
{
    public required string Device { get; init; }

    public required string Path { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    public required ulong Bytes { get; init; }

    public required int Chunks { get; init; }

    public required TimeSpan TotalTime { get; init; }

    public required VfioMigrationState FinalState { get; init; }

    public required HostKind HostKind { get; init; }
}

/// <summary>Moves a device's state out to a state file and back in, for both protocols.</summary>
public static class DeviceState
{
    /// <summary>Bytes read from a data fd per call (QEMU's VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE).</summary>
    public const int BufferSize = 1 << 20;

    /// <summary>
    /// Saves the device's state: the pre-copy rounds the device supports (at most
    /// <paramref name="maxPreCopyRounds"/>), then stop-and-copy, into a state file written under a
    /// temporary name and renamed only when complete. The device ends in STOP, or RUNNING with
    /// <paramref name="resume"/>. On failure or cancellation the partial file is deleted and the device
    /// is moved back to RUNNING (as a cancelled QEMU migration does), and the error is rethrown.
    /// </summary>
    public static StateSaveResult Save(VfioDevice device, string path, int maxPreCopyRounds = 1, bool resume = false,
        Action<StateTransferProgress>? progress = null, CancellationToken cancel = default)
    {
        var support = device.Migration;
        var identity = device.Identity;
        if (support.Protocol == MigrationProtocol.None)
            throw new VfioRuleException("NoMigrationSupport", $"{device.Name} has no migration driver, so it has no state to save.");
        var start = DeviceMigration.GetState(device);
        if (start is not (VfioMigrationState.Running or VfioMigrationState.Stop))
            throw new VfioRuleException("WrongStateForSave", $"{device.Name} is in {MigrationFsm.Name(start)}; a save starts from RUNNING or STOP.");

        var total = Stopwatch.StartNew();
        Stopwatch? stopped = start == VfioMigrationState.Stop ? Stopwatch.StartNew() : null;
        int rounds = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        using var writer = new StateFile.Writer(path, identity, 4096);
        try
        {
            if (support.Protocol == MigrationProtocol.V2)
            {
                if (start == VfioMigrationState.Running && (support.Flags & VfioConstants.VFIO_MIGRATION_PRE_COPY) != 0 && maxPreCopyRounds > 0)
                {
                    DeviceMigration.SetState(device, VfioMigrationState.PreCopy);
                    while (rounds < maxPreCopyRounds)
                    {
                        rounds++;
                        // A round reads what was pending when it began: a device that dirties its state faster
                        // than it can be read would otherwise keep one round going for ever.
                        var (initial, dirty) = PrecopyInfo(device);
                        if (initial == 0 && dirty == 0) break;
                        DrainV2(device, writer, MigrationPhase.PreCopy, buffer, progress, cancel, initial + dirty);
                    }
                }
                DeviceMigration.SetState(device, VfioMigrationState.StopCopy);
                stopped ??= Stopwatch.StartNew();
                DrainV2(device, writer, MigrationPhase.StopCopy, buffer, progress, cancel);
            }
            else
            {
                if (start == VfioMigrationState.Running && maxPreCopyRounds > 0)
                {
                    DeviceMigration.SetState(device, VfioMigrationState.PreCopy);
                    for (; rounds < maxPreCopyRounds; rounds++)
                    {
                        if (DrainV1(device, support, writer, MigrationPhase.PreCopy, buffer, progress, cancel) == 0) break;
                    }
                }
                DeviceMigration.SetState(device, VfioMigrationState.StopCopy);
                stopped ??= Stopwatch.StartNew();
                DrainV1(device, support, writer, MigrationPhase.StopCopy, buffer, progress, cancel);
            }
            cancel.ThrowIfCancellationRequested();
            DeviceMigration.SetState(device, VfioMigrationState.Stop);
            writer.Commit();
            if (resume) DeviceMigration.SetState(device, VfioMigrationState.Running);
            return new StateSaveResult
            {
                Device = device.Name, Path = Path.GetFullPath(path), Protocol = support.Protocol,
                PreCopyBytes = writer.PreCopyBytes, StopCopyBytes = writer.StopCopyBytes, PreCopyRounds = rounds,
                TotalTime = total.Elapsed, Downtime = stopped?.Elapsed ?? TimeSpan.Zero,
                FinalState = DeviceMigration.GetState(device), HostKind = device.Host.Kind,
            };
        }
        catch
        {
            BackToRunning(device);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A failed or cancelled save leaves the source running, as cancelling a QEMU migration does; the
    /// device state read back decides (a device in ERROR is left there for Reset-VfioDevice).
    /// </summary>
    internal static void BackToRunning(VfioDevice device)
    {
        try
        {
            var state = DeviceMigration.GetState(device);
            if (state is not (VfioMigrationState.Running or VfioMigrationState.Error))
                DeviceMigration.SetState(device, VfioMigrationState.Running);
        }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException or MigrationTransitionException)
        {
            // The original failure is what the user must see; the state can be read with Get-VfioMigrationState.
        }
    }

    /// <summary>v2: reads the data fd until the device has no more data for now (0, or ENOMSG in pre-copy).</summary>
    private static void DrainV2(VfioDevice device, StateFile.Writer writer, MigrationPhase phase, byte[] buffer,
        Action<StateTransferProgress>? progress, CancellationToken cancel, ulong budget = ulong.MaxValue) =>
        ReadV2(device, phase, (ph, data) =>
        {
            writer.WriteChunk(ph, data);
            ulong? pending = ph == MigrationPhase.PreCopy ? Sum(PrecopyInfo(device)) : null;
            progress?.Invoke(new StateTransferProgress(ph, writer.PreCopyBytes + writer.StopCopyBytes, pending));
        }, buffer, cancel, budget);

    /// <summary>
    /// v2: reads the data fd into <paramref name="sink"/> until the device has no more data for now (0, or
    /// ENOMSG in pre-copy) or <paramref name="budget"/> bytes were read. Returns the bytes read.
    /// </summary>
    internal static ulong ReadV2(VfioDevice device, MigrationPhase phase, ChunkSink sink, byte[] buffer, CancellationToken cancel, ulong budget = ulong.MaxValue)
    {
        var fd = device.DataFd ?? throw new VfioRuleException("NoDataSession", $"{device.Name} has no migration data session open.");
        ulong read = 0;
        while (read < budget)
        {
            cancel.ThrowIfCancellationRequested();
            long n = device.Host.TryRead(fd, buffer.AsSpan(0, (int)Math.Min((ulong)BufferSize, budget - read)));
            if (n == 0 || n == -Errno.ENOMSG || n == -Errno.EAGAIN) break;
            if (n < 0) throw new VfioNativeException("read", (int)-n, fd.Target, $"{phase} data");
            read += (ulong)n;
            sink(phase, buffer.AsSpan(0, (int)n));
        }
        return read;
    }

    private static ulong? Sum((ulong Initial, ulong Dirty) info) => info.Initial + info.Dirty;

    /// <summary>v2 PRE_COPY: VFIO_MIG_GET_PRECOPY_INFO on the data fd.</summary>
    internal static (ulong Initial, ulong Dirty) PrecopyInfo(VfioDevice device)
    {
        var info = StructBytes.Buffer(new vfio_precopy_info { argsz = (uint)StructBytes.SizeOf<vfio_precopy_info>() });
        device.Host.Ioctl(device.DataFd!, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO, info);
        var p = StructBytes.Read<vfio_precopy_info>(info);
        return (p.initial_bytes, p.dirty_bytes);
    }

    /// <summary>
    /// v1: the saving loop of the 5.8 protocol, pending_bytes -> data_offset -> data_size -> data, until
    /// pending_bytes is 0 (in pre-copy also when the bytes pending at the start have been read).
    /// Each transaction is one chunk, so the restore writes back the same transaction sizes.
    /// </summary>
    private static ulong DrainV1(VfioDevice device, MigrationSupport support, StateFile.Writer writer, MigrationPhase phase, byte[] buffer,
        Action<StateTransferProgress>? progress, CancellationToken cancel) =>
        ReadV1(device, support, phase, (ph, data) => writer.WriteChunk(ph, data),
            pending => progress?.Invoke(new StateTransferProgress(phase, writer.PreCopyBytes + writer.StopCopyBytes, pending)), buffer, cancel);

    /// <summary>v1: the saving loop into <paramref name="sink"/>; returns pending_bytes at the end.</summary>
    internal static ulong ReadV1(VfioDevice device, MigrationSupport support, MigrationPhase phase, ChunkSink sink, Action<ulong>? afterChunk, byte[] buffer, CancellationToken cancel)
    {
        long region = (long)support.V1Region!.Offset;
        ulong first = ReadField(device, region + 8, "pending_bytes");
        ulong pending = first, moved = 0;
        while (pending > 0)
        {
            cancel.ThrowIfCancellationRequested();
            ulong dataOffset = ReadField(device, region + 16, "data_offset");
            ulong dataSize = ReadField(device, region + 24, "data_size");
            if (dataSize == 0) break;
            if (dataSize > (ulong)StateFile.MaxChunk) throw new VfioRuleException("V1TransactionTooLarge", $"{device.Name} offers {dataSize} bytes in one transaction; at most {StateFile.MaxChunk} are kept in one chunk.");
            var data = dataSize <= (ulong)buffer.Length ? buffer.AsSpan(0, (int)dataSize) : new byte[dataSize];
            long got = device.Host.Pread(device.Fd, data, region + (long)dataOffset, "pread(data)");
            if (got != (long)dataSize) throw new VfioNativeException("pread(data)", Errno.EIO, device.Name, $"read {got} of {dataSize} bytes");
            sink(phase, data);
            moved += dataSize;
            // Reading pending_bytes again acknowledges the chunk and starts the next iteration.
            pending = ReadField(device, region + 8, "pending_bytes");
            afterChunk?.Invoke(pending);
            // In pre-copy a running device can keep producing: one pass over what was pending at the start.
            if (phase == MigrationPhase.PreCopy && moved >= first) break;
        }
        return pending;
    }

    internal static ulong ReadField(VfioDevice device, long offset, string field)
    {
        Span<byte> b = stackalloc byte[8];
        device.Host.Pread(device.Fd, b, offset, $"pread({field})");
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private static void WriteField(VfioDevice device, long offset, string field, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        device.Host.Pwrite(device.Fd, b, offset, $"pwrite({field})");
    }

    /// <summary>
    /// Loads a state file into a device. The whole file is verified (checksums, trailer, and that it was
    /// saved from a device of the same kind) before the device moves to RESUMING; a corrupt, truncated or
    /// foreign file is refused and the device is left as it was. Then the state is written (v2: the data
    /// fd; v1: each transaction at data_offset, then data_size), the device leaves RESUMING (where the
    /// driver validates what it received) and ends in STOP, or RUNNING with <paramref name="resume"/>.
    /// </summary>
    public static StateRestoreResult Restore(VfioDevice device, string path, bool resume = false,
        Action<StateTransferProgress>? progress = null, CancellationToken cancel = default)
    {
        StateFile.Contents contents;
        try { contents = StateFile.Verify(path); }
        catch (InvalidDataException e) { throw new VfioRuleException("StateFileInvalid", e.Message); }
        var support = device.Migration;
        string? mismatch = contents.Identity.Mismatch(device.Identity);
        if (mismatch is not null)
            throw new VfioRuleException("StateFileForeign", $"'{path}' was saved from {contents.Identity.Name} on {contents.Identity.Host} and cannot be loaded into {device.Name}: {mismatch}.");
        var start = DeviceMigration.GetState(device);
        if (start is not (VfioMigrationState.Running or VfioMigrationState.Stop))
            throw new VfioRuleException("WrongStateForRestore", $"{device.Name} is in {MigrationFsm.Name(start)}; a restore starts from RUNNING or STOP.");
        cancel.ThrowIfCancellationRequested();

        var total = Stopwatch.StartNew();
        ulong moved = 0;
        DeviceMigration.SetState(device, VfioMigrationState.Resuming);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var buffer = new byte[Math.Min(StateFile.MaxChunk, Math.Max(1, MaxChunk(contents)))];
            foreach (var (phase, offset, length) in contents.Chunks)
            {
                cancel.ThrowIfCancellationRequested();
                file.Position = offset;
                file.ReadExactly(buffer, 0, length);
                var data = buffer.AsSpan(0, length);
                if (support.Protocol == MigrationProtocol.V2) WriteAll(device, data);
                else WriteV1Transaction(device, support, data);
                moved += (ulong)length;
                progress?.Invoke(new StateTransferProgress(phase, moved, contents.TotalBytes - moved));
            }
            // Leaving RESUMING is where the driver checks the stream it received.
            DeviceMigration.SetState(device, VfioMigrationState.Stop);
        }
        catch (Exception e) when (e is not VfioRuleException)
        {
            throw new VfioRuleException("RestoreFailed",
                $"loading '{path}' into {device.Name} failed after {moved} of {contents.TotalBytes} bytes: {e.Message} The device is in {SafeState(device)}; a failed restore needs a reset (Reset-VfioDevice).");
        }
        if (resume) DeviceMigration.SetState(device, VfioMigrationState.Running);
        return new StateRestoreResult
        {
            Device = device.Name, Path = Path.GetFullPath(path), Protocol = support.Protocol, Bytes = moved,
            Chunks = contents.Chunks.Count, TotalTime = total.Elapsed, FinalState = DeviceMigration.GetState(device),
            HostKind = device.Host.Kind,
        };
    }

    private static string SafeState(VfioDevice device)
    {
        try { return MigrationFsm.Name(DeviceMigration.GetState(device)); }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException) { return "an unknown state"; }
    }

    private static int MaxChunk(StateFile.Contents contents)
    {
        int max = 0;
        foreach (var c in contents.Chunks) max = Math.Max(max, c.Length);
        return max;
    }

    /// <summary>v2: write() to the RESUMING data fd until every byte is taken (a driver may take fewer per call).</summary>
    internal static void WriteAll(VfioDevice device, ReadOnlySpan<byte> data)
    {
        var fd = device.DataFd ?? throw new VfioRuleException("NoDataSession", $"{device.Name} has no resume data session open.");
        while (data.Length > 0)
        {
            long n = device.Host.TryWrite(fd, data);
            if (n < 0) throw new VfioNativeException("write", (int)-n, fd.Target, $"{data.Length} bytes of state");
            if (n == 0) throw new VfioNativeException("write", Errno.EIO, fd.Target, "the device took no bytes");
            data = data.Slice((int)n);
        }
    }

    /// <summary>v1 resuming: data_offset, the chunk written at it, then data_size (the driver consumes it).</summary>
    internal static void WriteV1Transaction(VfioDevice device, MigrationSupport support, ReadOnlySpan<byte> data)
    {
        long region = (long)support.V1Region!.Offset;
        ulong dataOffset = ReadField(device, region + 16, "data_offset");
        long written = device.Host.Pwrite(device.Fd, data, region + (long)dataOffset, "pwrite(data)");
        if (written != data.Length) throw new VfioNativeException("pwrite(data)", Errno.EIO, device.Name, $"wrote {written} of {data.Length} bytes");
        WriteField(device, region + 24, "data_size", (ulong)data.Length);
    }
}
