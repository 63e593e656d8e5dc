using System;
using System.Buffers.Binary;
using System.Collections;
using System.Collections.Generic;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// The internal state of a simulated device, as the bytes its migration stream carries.
/// Layout (chosen so that a device configured like the lab's mtty-2 streams exactly what mtty streams):
/// a 24-byte header like <c>struct mtty_data</c> (u64 magic 0x7e9d09898c3e2c4e, u32 major 1, u32 minor 0,
/// u32 units, u32 flags 0; samples/vfio-mdev/mtty.c) followed by the device's registers, the "body".
/// The body starts as bytes drawn from the device's seed, is changed by the workload in 64-byte blocks
/// (which become dirty while a pre-copy session runs), and is replaced when a stream is loaded.
/// Blocks are generated on demand from (seed, block, generation): a change only bumps the block's
/// generation, so a device that changes millions of blocks a second costs a counter per change, and a
/// device with hundreds of MiB of state costs memory only for loaded blocks. An mtty's image is instead
/// its register file (SimMttyPorts): the body is the ports' bytes themselves.
/// </summary>
internal sealed class SimStateImage
{
    /// <summary>sizeof the mtty_data header (offsetof(struct mtty_data, ports)).</summary>
    public const int HeaderSize = SimMttyPorts.HeaderSize;

    /// <summary>Granularity of state changes and of dirty records.</summary>
    public const int BlockSize = 64;

    /// <summary>A dirty record in a pre-copy stream: u64 offset in the image, u64 length, then the bytes.</summary>
    public const int RecordHeaderSize = 16;

    /// <summary>mtty's MTTY_MAGIC as it appears in the stream (little-endian): 4e 2c 3e 8c 89 09 9d 7e.</summary>
    public const ulong Magic = 0x7e9d09898c3e2c4eUL;

    /// <summary>sizeof(struct serial_port) in mtty: the header's "units" field counts these (nr_ports).</summary>
    private const int UnitSize = SimMttyPorts.PortSize;

    // Replaced only by Reseed (a driver that re-initialises its hardware: SimDefect.StateLostOnStopToRunning).
    private long _seed;
    private readonly byte[] _header;
    // After a stream was loaded, the body as loaded (one copy: a per-block comparison costs the downtime
    // of a large device); a block changed since then is generated from its new generation instead.
    private byte[]? _loadedBody;
    // A device whose state is a register file (mtty's ports): the body is those bytes, live.
    private readonly Memory<byte> _registers;
    private int[]? _generations;
    private BitArray? _dirty;

    public SimStateImage(long size, long seed)
    {
        if (size < 0) throw new ArgumentOutOfRangeException(nameof(size));
        if ((size - HeaderSize) / BlockSize >= int.MaxValue) throw new ArgumentOutOfRangeException(nameof(size), "The simulated device state is limited to 128 GiB.");
        Size = size;
        _seed = seed;
        HeaderLength = (int)Math.Min(HeaderSize, size);
        _header = MttyHeader((uint)Math.Max(0, (size - HeaderSize) / UnitSize)).AsSpan(0, HeaderLength).ToArray();
        BodyLength = size - HeaderLength;
        BlockCount = (int)((BodyLength + BlockSize - 1) / BlockSize);
    }

    /// <summary>
    /// The state of a device that is a register file: mtty's header for <paramref name="units"/> ports, then
    /// <paramref name="registers"/> themselves (not a copy: a register write is a state change). The running
    /// device's workload does not change it; only the device model and a loaded stream do.
    /// </summary>
    public SimStateImage(uint units, Memory<byte> registers)
    {
        Size = HeaderSize + registers.Length;
        HeaderLength = HeaderSize;
        _header = MttyHeader(units);
        _registers = registers;
        IsRegisterFile = true;
        BodyLength = registers.Length;
        BlockCount = (int)((BodyLength + BlockSize - 1) / BlockSize);
    }

    /// <summary>The body is a live register file (mtty): streams snapshot it when the device stops, and take no more bytes than it has.</summary>
    public bool IsRegisterFile { get; }

    private static byte[] MttyHeader(uint units)
    {
        var header = new byte[HeaderSize];
        BinaryPrimitives.WriteUInt64LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), 1);  // MTTY_MAJOR_VER
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), 0); // MTTY_MINOR_VER
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), units);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), 0); // flags
        return header;
    }

    /// <summary>Bytes of the whole image (the device's StateSize).</summary>
    public long Size { get; }

    /// <summary>Bytes of the header present (24, or less for a tiny state).</summary>
    public int HeaderLength { get; }

    public long BodyLength { get; }

    public int BlockCount { get; }

    /// <summary>The header bytes a stream for this device must start with.</summary>
    public ReadOnlySpan<byte> Header => _header;

    /// <summary>Number of body blocks changed since the dirty set was last cleared.</summary>
    public int DirtyBlocks { get; private set; }

    /// <summary>Bytes the dirty blocks would take as records in a stream.</summary>
    public long DirtyRecordBytes
    {
        get
        {
            if (DirtyBlocks == 0) return 0;
            long bytes = (long)DirtyBlocks * (RecordHeaderSize + BlockSize);
            if (_dirty![BlockCount - 1]) bytes -= BlockSize - BlockLength(BlockCount - 1);
            return bytes;
        }
    }

    /// <summary>Image offset where body block <paramref name="block"/> starts.</summary>
    public long BlockOffset(int block) => HeaderLength + (long)block * BlockSize;

    public int BlockLength(int block) => (int)Math.Min(BlockSize, BodyLength - (long)block * BlockSize);

    /// <summary>Copies image bytes [offset, offset + destination.Length) into destination.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset + destination.Length > Size) throw new ArgumentOutOfRangeException(nameof(offset));
        // Into a block-sized scratch on the stack: a read of megabytes allocates nothing per block.
        Span<byte> scratch = stackalloc byte[BlockSize];
        while (destination.Length > 0)
        {
            int n;
            if (offset < HeaderLength)
            {
                n = (int)Math.Min(HeaderLength - offset, destination.Length);
                _header.AsSpan((int)offset, n).CopyTo(destination);
            }
            else
            {
                long bodyOffset = offset - HeaderLength;
                int block = (int)(bodyOffset / BlockSize);
                int within = (int)(bodyOffset % BlockSize);
                var bytes = BlockBytes(block, scratch);
                n = Math.Min(bytes.Length - within, destination.Length);
                bytes.Slice(within, n).CopyTo(destination);
            }
            offset += n;
            destination = destination.Slice(n);
        }
    }

    /// <summary>The whole image (for tests and small states).</summary>
    public byte[] ToArray()
    {
        var all = new byte[checked((int)Size)];
        Read(0, all);
        return all;
    }

    /// <summary>The running device changes one block of its state (chosen and filled by <paramref name="random"/>).</summary>
    public void ChangeRandomBlock(ref SimRandom random)
    {
        if (BlockCount == 0 || IsRegisterFile) return;
        int block = (int)random.Below((ulong)BlockCount);
        _generations ??= new int[BlockCount];
        _generations[block]++;
        MarkDirty(block);
    }

    /// <summary>Forgets which blocks changed (a new pre-copy session starts from the current image).</summary>
    public void ClearDirty()
    {
        _dirty = null;
        DirtyBlocks = 0;
    }

    /// <summary>
    /// Moves up to <paramref name="maxBlocks"/> dirty blocks, lowest first, into <paramref name="output"/> as
    /// records, clearing them. With <paramref name="below"/>, only blocks starting below that image offset
    /// are written (the others are dropped: the stop-copy tail resends them).
    /// </summary>
    public void TakeDirtyRecords(List<byte[]> output, int maxBlocks, long below = long.MaxValue)
    {
        if (DirtyBlocks == 0) return;
        Span<byte> scratch = stackalloc byte[BlockSize];
        for (int block = 0; block < BlockCount && DirtyBlocks > 0 && maxBlocks > 0; block++)
        {
            if (!_dirty![block]) continue;
            _dirty[block] = false;
            DirtyBlocks--;
            if (BlockOffset(block) >= below) continue;
            var bytes = BlockBytes(block, scratch);
            var record = new byte[RecordHeaderSize + bytes.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(record, (ulong)BlockOffset(block));
            BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(8), (ulong)bytes.Length);
            bytes.CopyTo(record.AsSpan(RecordHeaderSize));
            output.Add(record);
            maxBlocks--;
        }
        if (DirtyBlocks == 0) _dirty = null;
    }

    /// <summary>Replaces the body with a loaded image (the header was validated by the caller).</summary>
    public void Load(ReadOnlySpan<byte> image)
    {
        if (image.Length != Size) throw new ArgumentException("The image has the wrong size.", nameof(image));
        if (IsRegisterFile)
        {
            image.Slice(HeaderLength).CopyTo(_registers.Span);
            ClearDirty();
            return;
        }
        _generations = null;
        _loadedBody = image.Slice(HeaderLength).ToArray();
        ClearDirty();
    }

    /// <summary>
    /// Replaces the body with the bytes <paramref name="seed"/> generates, as if the device had been built
    /// with that seed: what was loaded and what the workload changed are gone. Not for a register file,
    /// whose owner re-initialises it.
    /// </summary>
    public void Reseed(long seed)
    {
        if (IsRegisterFile) throw new InvalidOperationException("A register file is re-initialised by its device model.");
        _seed = seed;
        _generations = null;
        _loadedBody = null;
        ClearDirty();
    }

    private void MarkDirty(int block)
    {
        _dirty ??= new BitArray(BlockCount);
        if (_dirty[block]) return;
        _dirty[block] = true;
        DirtyBlocks++;
    }

    /// <summary>The block's current bytes: a slice of the loaded body, or generated into <paramref name="scratch"/>.</summary>
    private ReadOnlySpan<byte> BlockBytes(int block, Span<byte> scratch)
    {
        int length = BlockLength(block);
        if (IsRegisterFile) return _registers.Span.Slice(block * BlockSize, length);
        int generation = _generations?[block] ?? 0;
        if (generation == 0 && _loadedBody is not null)
            return _loadedBody.AsSpan((int)((long)block * BlockSize), length);
        var bytes = scratch.Slice(0, length);
        // Generation 0 keeps the original derivation, so a device's first state is what it always was.
        ulong index = (uint)block | ((ulong)(uint)generation << 32);
        var random = new SimRandom(SimRandom.Derive(_seed, purpose: 1, index: index));
        random.Fill(bytes);
        return bytes;
    }
}
