using System;
using System.Buffers.Binary;
using System.Threading;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>Receives a chunk of a device's migration stream (a state file, a destination device).</summary>
public delegate void ChunkSink(MigrationPhase phase, ReadOnlySpan<byte> data);

/// <summary>
/// A device's migration stream on the wire of both protocols: reading it while saving (v2 data fd, v1
/// pending_bytes / data_offset / data_size loop) and writing it while resuming (v2 data fd, v1
/// transactions). The engine calls these; they hold no state of their own.
/// </summary>
internal static class DeviceStream
{
    /// <summary>Bytes read from a data fd per call (QEMU's VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE).</summary>
    public const int BufferSize = 1 << 20;

    /// <summary>
    /// v2: reads the data fd into <paramref name="sink"/> until the device has no more data for now (0, or
    /// ENOMSG in pre-copy) or <paramref name="budget"/> bytes were read. Returns the bytes read.
    /// </summary>
    public static ulong ReadV2(VfioDevice device, MigrationPhase phase, ChunkSink sink, byte[] buffer, CancellationToken cancel, ulong budget = ulong.MaxValue)
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

    /// <summary>v2 PRE_COPY: VFIO_MIG_GET_PRECOPY_INFO on the data fd.</summary>
    public static (ulong Initial, ulong Dirty) PrecopyInfo(VfioDevice device)
    {
        var fd = device.DataFd ?? throw new VfioRuleException("NoDataSession", $"{device.Name} has no migration data session open.");
        var info = StructBytes.Buffer(new vfio_precopy_info { argsz = (uint)StructBytes.SizeOf<vfio_precopy_info>() });
        device.Host.Ioctl(fd, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO, info);
        var p = StructBytes.Read<vfio_precopy_info>(info);
        return (p.initial_bytes, p.dirty_bytes);
    }

    /// <summary>
    /// v1: the saving loop of the 5.8 protocol, pending_bytes -> data_offset -> data_size -> data, until
    /// pending_bytes is 0 (in pre-copy also when the bytes pending at the start have been read). Each
    /// transaction is one chunk, so a restore writes back the same transaction sizes. Returns
    /// pending_bytes at the end; <paramref name="afterChunk"/> sees pending_bytes after each transaction.
    /// </summary>
    public static ulong ReadV1(VfioDevice device, MigrationSupport support, MigrationPhase phase, ChunkSink sink, Action<ulong>? afterChunk, byte[] buffer, CancellationToken cancel)
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
            // A stopped device has no new state to produce: a driver still pending after twice what it first
            // announced never drains, and the save would run for ever (the migration's guarantee that it ends
            // in a named state would go with it).
            if (phase == MigrationPhase.StopCopy && pending > 0 && moved > 2 * first)
                throw new VfioRuleException("V1PendingNeverDrains",
                    $"{device.Name} still has pending_bytes {pending} after {moved} bytes of stop-and-copy, twice the {first} it announced: its driver does not drain; the save stops here.");
        }
        return pending;
    }

    /// <summary>v1: pending_bytes.</summary>
    public static ulong V1Pending(VfioDevice device, MigrationSupport support) =>
        ReadField(device, (long)support.V1Region!.Offset + 8, "pending_bytes");

    /// <summary>v2: write() to the RESUMING data fd until every byte is taken (a driver may take fewer per call).</summary>
    public static void WriteV2(VfioDevice device, ReadOnlySpan<byte> data)
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
    public static void WriteV1Transaction(VfioDevice device, MigrationSupport support, ReadOnlySpan<byte> data)
    {
        long region = (long)support.V1Region!.Offset;
        ulong dataOffset = ReadField(device, region + 16, "data_offset");
        long written = device.Host.Pwrite(device.Fd, data, region + (long)dataOffset, "pwrite(data)");
        if (written != data.Length) throw new VfioNativeException("pwrite(data)", Errno.EIO, device.Name, $"wrote {written} of {data.Length} bytes");
        WriteField(device, region + 24, "data_size", (ulong)data.Length);
    }

    public static ulong ReadField(VfioDevice device, long offset, string field)
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
}
