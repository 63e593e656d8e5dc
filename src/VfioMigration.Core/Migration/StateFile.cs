using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Hashing;
using System.Text;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>Which phase of a migration produced a chunk of device state.</summary>
public enum MigrationPhase : byte
{
    PreCopy = 1,
    StopCopy = 2,
}

/// <summary>Where one chunk's data lies in a state file.</summary>
public sealed record StateChunk(MigrationPhase Phase, long Offset, int Length);

/// <summary>Who a state file belongs to: the device it was saved from, as far as a destination must match it.</summary>
public sealed class DeviceIdentity
{
    public required string Name { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    /// <summary>"pci" or "mdev".</summary>
    public required string Bus { get; init; }

    /// <summary>What a destination must equal: "1234:11e8" for PCI, the mdev type for an mdev.</summary>
    public required string Model { get; init; }

    public required string Driver { get; init; }

    /// <summary>The host the state was saved on.</summary>
    public required string Host { get; init; }

    /// <summary>Why a destination cannot take this state, or null if it can.</summary>
    public string? Mismatch(DeviceIdentity destination)
    {
        if (destination.Protocol != Protocol) return $"the state is of a {Protocol} device and '{destination.Name}' is a {destination.Protocol} device";
        if (!string.Equals(destination.Model, Model, StringComparison.OrdinalIgnoreCase)) return $"the state is of a {Model} device and '{destination.Name}' is a {destination.Model}";
        if (!string.Equals(destination.Driver, Driver, StringComparison.Ordinal)) return $"the state was saved through the {Driver} driver and '{destination.Name}' is bound to {destination.Driver}";
        return null;
    }
}

/// <summary>
/// The device-state file of Save-VfioDeviceState and Restore-VfioDeviceState (docs/state-file-format.md):
/// a header (magic, version, protocol, device identity, page size), framed chunks each with its phase
/// and an XxHash64 of its bytes, and a trailer with the totals and an XxHash64 of the file's structure
/// (the header, every chunk header with its data hash, and the trailer's fields).
/// A file without a valid trailer is incomplete and is refused, so a save that failed or was cancelled
/// can never be restored; the writer also writes to a temporary name and renames only when it is whole.
/// </summary>
public static class StateFile
{
    public static ReadOnlySpan<byte> Magic => "VFIOMIG\0"u8;
    public const ushort Version = 1;
    private const uint ChunkMagic = 0x4B4E4843;   // "CHNK"
    private const uint TrailerMagic = 0x524C5254; // "TRLR"
    private const int ChunkHeaderSize = 4 + 1 + 3 + 4 + 8;
    private const int TrailerSize = 4 + 4 + 8 + 8 + 8 + 8;

    /// <summary>The most bytes one chunk may hold (the reader refuses larger frames as damage).</summary>
    public const int MaxChunk = 64 * 1024 * 1024;

    /// <summary>Writes a state file chunk by chunk; <see cref="Commit"/> makes it visible under its name.</summary>
    public sealed class Writer : IDisposable
    {
        private readonly string _path;
        private readonly string _temp;
        private readonly FileStream _stream;
        private readonly XxHash64 _whole = new();
        private uint _chunks;
        private bool _committed;

        public Writer(string path, DeviceIdentity identity, ulong pageSize)
        {
            _path = Path.GetFullPath(path);
            _temp = Path.Combine(Path.GetDirectoryName(_path) ?? ".", "." + Path.GetFileName(_path) + "." + Guid.NewGuid().ToString("N")[..8] + ".partial");
            _stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            var header = new List<byte>();
            header.AddRange(Magic.ToArray());
            Add16(header, Version);
            Add16(header, (ushort)identity.Protocol);
            Add64(header, pageSize);
            Add64(header, (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            foreach (string s in new[] { identity.Name, identity.Bus, identity.Model, identity.Driver, identity.Host })
            {
                var b = Encoding.UTF8.GetBytes(s);
                Add16(header, checked((ushort)b.Length));
                header.AddRange(b);
            }
            var bytes = header.ToArray();
            Emit(bytes);
        }

        /// <summary>Bytes written so far in each phase.</summary>
        public ulong PreCopyBytes { get; private set; }

        public ulong StopCopyBytes { get; private set; }

        /// <summary>Appends one chunk (for v1, one transaction: the restore writes it back as one).</summary>
        public void WriteChunk(MigrationPhase phase, ReadOnlySpan<byte> data)
        {
            if (data.Length > MaxChunk) throw new ArgumentException("A chunk holds at most 64 MiB.", nameof(data));
            Span<byte> h = stackalloc byte[ChunkHeaderSize];
            BinaryPrimitives.WriteUInt32LittleEndian(h, ChunkMagic);
            h[4] = (byte)phase;
            BinaryPrimitives.WriteUInt32LittleEndian(h.Slice(8), (uint)data.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(h.Slice(12), XxHash64.HashToUInt64(data));
            // The file's own hash covers its structure (header, chunk headers with their data hashes,
            // trailer); each chunk's data is covered once, by its own hash, so no byte is hashed twice.
            Emit(h);
            _stream.Write(data);
            _chunks++;
            if (phase == MigrationPhase.PreCopy) PreCopyBytes += (ulong)data.Length;
            else StopCopyBytes += (ulong)data.Length;
        }

        /// <summary>Writes the trailer, flushes to disk, and renames the file to its name.</summary>
        public void Commit()
        {
            Span<byte> t = stackalloc byte[TrailerSize];
            BinaryPrimitives.WriteUInt32LittleEndian(t, TrailerMagic);
            BinaryPrimitives.WriteUInt32LittleEndian(t.Slice(4), _chunks);
            BinaryPrimitives.WriteUInt64LittleEndian(t.Slice(8), PreCopyBytes);
            BinaryPrimitives.WriteUInt64LittleEndian(t.Slice(16), StopCopyBytes);
            BinaryPrimitives.WriteUInt64LittleEndian(t.Slice(24), PreCopyBytes + StopCopyBytes);
            _whole.Append(t.Slice(0, 32));
            BinaryPrimitives.WriteUInt64LittleEndian(t.Slice(32), _whole.GetCurrentHashAsUInt64());
            _stream.Write(t);
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            File.Move(_temp, _path, overwrite: true);
            _committed = true;
        }

        private void Emit(ReadOnlySpan<byte> bytes)
        {
            _stream.Write(bytes);
            _whole.Append(bytes);
        }

        /// <summary>Without <see cref="Commit"/>, the partial file is deleted: nothing that looks complete is left.</summary>
        public void Dispose()
        {
            if (_committed) return;
            _stream.Dispose();
            try { File.Delete(_temp); } catch (IOException) { }
        }
    }

    /// <summary>A verified state file: its identity, totals and chunks (offsets into the file).</summary>
    public sealed class Contents
    {
        public required string Path { get; init; }

        public required DeviceIdentity Identity { get; init; }

        public required ulong PageSize { get; init; }

        public required DateTimeOffset Saved { get; init; }

        public required IReadOnlyList<StateChunk> Chunks { get; init; }

        public required ulong PreCopyBytes { get; init; }

        public required ulong StopCopyBytes { get; init; }

        public ulong TotalBytes => PreCopyBytes + StopCopyBytes;
    }

    /// <summary>
    /// Reads and verifies a whole state file (every chunk's hash, the trailer's totals and hash) before
    /// anything is written to a device. Throws <see cref="InvalidDataException"/> saying what is wrong.
    /// </summary>
    public static Contents Verify(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var whole = new XxHash64();
        var reader = new BinaryReader(stream);
        long length = stream.Length;
        byte[] Take(int n)
        {
            var b = reader.ReadBytes(n);
            if (b.Length != n) throw new InvalidDataException($"'{path}' is truncated: it ends inside {(stream.Position >= length ? "its last record" : "a record")}.");
            whole.Append(b);
            return b;
        }
        if (length < Magic.Length || !Take(Magic.Length).AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not a device-state file written by Save-VfioDeviceState.");
        var fixedHeader = Take(2 + 2 + 8 + 8);
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(fixedHeader);
        if (version != Version) throw new InvalidDataException($"'{path}' is a version {version} state file; this module reads version {Version}.");
        var protocol = (MigrationProtocol)BinaryPrimitives.ReadUInt16LittleEndian(fixedHeader.AsSpan(2));
        ulong pageSize = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader.AsSpan(4));
        var saved = DateTimeOffset.FromUnixTimeMilliseconds((long)BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader.AsSpan(12)));
        var strings = new string[5];
        for (int i = 0; i < strings.Length; i++)
        {
            int n = BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
            strings[i] = Encoding.UTF8.GetString(Take(n));
        }
        var chunks = new List<StateChunk>();
        ulong pre = 0, stop = 0;
        while (true)
        {
            if (stream.Position + 4 > length) throw new InvalidDataException($"'{path}' is incomplete: it has no trailer (the save did not finish).");
            var magicBytes = Take(4);
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(magicBytes);
            if (magic == TrailerMagic) break;
            if (magic != ChunkMagic) throw new InvalidDataException($"'{path}' is damaged: no chunk starts at byte {stream.Position - 4}.");
            var h = Take(ChunkHeaderSize - 4);
            var phase = (MigrationPhase)h[0];
            int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(4));
            ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(h.AsSpan(8));
            if (phase is not (MigrationPhase.PreCopy or MigrationPhase.StopCopy) || size < 0 || size > MaxChunk)
                throw new InvalidDataException($"'{path}' is damaged: the chunk at byte {stream.Position - ChunkHeaderSize} has a bad header.");
            long offset = stream.Position;
            var data = reader.ReadBytes(size);
            if (data.Length != size) throw new InvalidDataException($"'{path}' is truncated: it ends inside the chunk at byte {offset}.");
            if (XxHash64.HashToUInt64(data) != hash) throw new InvalidDataException($"'{path}' is damaged: the chunk at byte {offset} does not match its checksum.");
            chunks.Add(new StateChunk(phase, offset, size));
            if (phase == MigrationPhase.PreCopy) pre += (ulong)size; else stop += (ulong)size;
        }
        var t = Take(TrailerSize - 4 - 8);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(t);
        ulong tPre = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(4));
        ulong tStop = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(12));
        ulong tTotal = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(20));
        ulong expected = whole.GetCurrentHashAsUInt64();
        var last = reader.ReadBytes(8);
        if (last.Length != 8) throw new InvalidDataException($"'{path}' is truncated inside its trailer.");
        if (BinaryPrimitives.ReadUInt64LittleEndian(last) != expected) throw new InvalidDataException($"'{path}' is damaged: the file does not match its checksum.");
        if (count != chunks.Count || tPre != pre || tStop != stop || tTotal != pre + stop)
            throw new InvalidDataException($"'{path}' is damaged: its trailer counts {count} chunks and {tTotal} bytes, the file holds {chunks.Count} and {pre + stop}.");
        if (stream.Position != length) throw new InvalidDataException($"'{path}' has {length - stream.Position} bytes after its trailer.");
        return new Contents
        {
            Path = path,
            Identity = new DeviceIdentity { Name = strings[0], Protocol = protocol, Bus = strings[1], Model = strings[2], Driver = strings[3], Host = strings[4] },
            PageSize = pageSize,
            Saved = saved,
            Chunks = chunks,
            PreCopyBytes = pre,
            StopCopyBytes = stop,
        };
    }

    /// <summary>The device's migration stream the file carries, without its framing (after verifying the file).</summary>
    public static byte[] ReadStream(string path)
    {
        var contents = Verify(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var stream = new byte[checked((int)contents.TotalBytes)];
        int at = 0;
        foreach (var chunk in contents.Chunks)
        {
            file.Position = chunk.Offset;
            file.ReadExactly(stream, at, chunk.Length);
            at += chunk.Length;
        }
        return stream;
    }

    private static void Add16(List<byte> b, ushort v) { b.Add((byte)v); b.Add((byte)(v >> 8)); }

    private static void Add64(List<byte> b, ulong v) { for (int i = 0; i < 8; i++) b.Add((byte)(v >> (8 * i))); }
}
