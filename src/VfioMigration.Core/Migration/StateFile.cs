using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Hashing;
using System.Text;
using VfioMigration.Core.Files;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>Which phase of a migration produced a chunk of device state.</summary>
public enum MigrationPhase : byte
{
    PreCopy = 1,
    StopCopy = 2,
}

/// <summary>Where one chunk's data lies in a state file, and the XxHash64 its bytes must have.</summary>
public sealed record StateChunk(MigrationPhase Phase, long Offset, int Length, ulong Hash);

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
/// can never be restored; the writer also writes to a temporary name (0600) and renames only when whole.
/// </summary>
public static class StateFile
{
    public static ReadOnlySpan<byte> Magic => "VFIOMIG\0"u8;
    public const ushort Version = 1;
    private const uint ChunkMagic = 0x4B4E4843;   // "CHNK"
    private const uint TrailerMagic = 0x524C5254; // "TRLR"
    private const int ChunkHeaderSize = 4 + 1 + 3 + 4 + 8;
    private const int TrailerSize = 4 + 4 + 8 + 8 + 8 + 8;
    private const int FixedHeaderSize = 2 + 2 + 8 + 8;
    private const string What = "state file";

    /// <summary>The most bytes one chunk may hold (the reader refuses larger frames as damage).</summary>
    public const int MaxChunk = 64 * 1024 * 1024;

    /// <summary>Writes a state file chunk by chunk; <see cref="Commit"/> makes it visible under its name.</summary>
    public sealed class Writer : IDisposable
    {
        private readonly AtomicFileWriter _file;
        private readonly XxHash64 _whole = new();
        private uint _chunks;

        /// <summary>
        /// Creates the temporary file (0600) beside <paramref name="path"/>. Refuses a target that is not a
        /// regular file, and an existing one unless <paramref name="replace"/>.
        /// </summary>
        public Writer(string path, DeviceIdentity identity, ulong pageSize, bool replace = true)
        {
            _file = new AtomicFileWriter(path, What, replace);
            try
            {
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
                Emit(header.ToArray());
            }
            catch
            {
                _file.Dispose();
                throw;
            }
        }

        /// <summary>The full path the file gets on commit.</summary>
        public string Path => _file.Path;

        /// <summary>The temporary file's path until the commit.</summary>
        public string TempPath => _file.TempPath;

        /// <summary>Bytes written so far in each phase.</summary>
        public ulong PreCopyBytes { get; private set; }

        public ulong StopCopyBytes { get; private set; }

        /// <summary>True once the file carries its name.</summary>
        public bool Committed { get; private set; }

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
            _file.Write(data);
            _chunks++;
            if (phase == MigrationPhase.PreCopy) PreCopyBytes += (ulong)data.Length;
            else StopCopyBytes += (ulong)data.Length;
        }

        /// <summary>Appends one chunk given as an array (PowerShell cannot make the span the other overload takes).</summary>
        public void WriteChunk(MigrationPhase phase, byte[] data) => WriteChunk(phase, data.AsSpan());

        /// <summary>Writes the trailer, syncs to disk, and renames the file to its name.</summary>
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
            _file.Write(t);
            _file.Commit();
            Committed = true;
        }

        private void Emit(ReadOnlySpan<byte> bytes)
        {
            _file.Write(bytes);
            _whole.Append(bytes);
        }

        /// <summary>Without <see cref="Commit"/>, the partial file is deleted: nothing that looks complete is left. Never throws.</summary>
        public void Dispose() => _file.Dispose();
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

        /// <summary>The largest chunk, for a load buffer.</summary>
        public int MaxChunkLength { get; init; }
    }

    /// <summary>
    /// A state file opened once and verified through that descriptor; its chunks are read back through the
    /// same descriptor and checked against their hashes again as they are read, so what is loaded into a
    /// device is exactly what was verified, whatever is renamed onto the path or written into the file
    /// meanwhile.
    /// </summary>
    public sealed class Verified : IDisposable
    {
        private readonly LocalFile _file;

        internal Verified(LocalFile file, Contents contents)
        {
            _file = file;
            Contents = contents;
        }

        public Contents Contents { get; }

        /// <summary>The chunk's bytes into <paramref name="buffer"/>, checked against its hash again.</summary>
        public ReadOnlySpan<byte> ReadChunk(StateChunk chunk, byte[] buffer)
        {
            var data = buffer.AsSpan(0, chunk.Length);
            int n;
            try { n = _file.ReadAt(data, chunk.Offset); }
            catch (VfioNativeException e) { throw RegularFile.Failed(RegularFile.ReadFailedId, What, Contents.Path, e); }
            if (n != chunk.Length || XxHash64.HashToUInt64(data) != chunk.Hash)
                throw new VfioRuleException(ErrorIds.StateFileChanged, $"The state file '{Contents.Path}' changed after it was verified: the chunk at byte {chunk.Offset} no longer matches its checksum.");
            return data;
        }

        public void Dispose() => _file.Dispose();
    }

    /// <summary>
    /// Opens a state file once (a regular file only: FIFOs, devices and directories are refused without
    /// blocking) and verifies it through that descriptor: every chunk's hash, then the structure's hash in
    /// the trailer, and only then does it interpret the header (identity, timestamp, page size).
    /// Throws <see cref="VfioRuleException"/> with StateFileInvalid (damaged, truncated, incomplete, not a
    /// state file), StateFileNotFound, FileNotRegular or FileReadFailed.
    /// </summary>
    public static Verified Open(string path)
    {
        var file = RegularFile.OpenRead(path, What, ErrorIds.StateFileNotFound);
        try
        {
            return new Verified(file, Check(file, path));
        }
        catch (InvalidDataException e)
        {
            file.Dispose();
            throw new VfioRuleException(ErrorIds.StateFileInvalid, e.Message);
        }
        catch (VfioNativeException e)
        {
            file.Dispose();
            throw RegularFile.Failed(RegularFile.ReadFailedId, What, path, e);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Verifies a whole state file (see <see cref="Open"/>) and returns what it holds.</summary>
    public static Contents Verify(string path)
    {
        using var verified = Open(path);
        return verified.Contents;
    }

    /// <summary>The device's migration stream the file carries, without its framing (after verifying the file).</summary>
    public static byte[] ReadStream(string path)
    {
        using var verified = Open(path);
        var stream = new byte[checked((int)verified.Contents.TotalBytes)];
        var buffer = new byte[Math.Max(1, verified.Contents.MaxChunkLength)];
        int at = 0;
        foreach (var chunk in verified.Contents.Chunks)
        {
            verified.ReadChunk(chunk, buffer).CopyTo(stream.AsSpan(at));
            at += chunk.Length;
        }
        return stream;
    }

    /// <summary>
    /// The structure pass: walks the framing with every length bounded by the file, hashing what the
    /// trailer's hash covers and each chunk's data; nothing is interpreted until that hash holds.
    /// </summary>
    private static Contents Check(LocalFile file, string path)
    {
        long length = file.Stat().Size;
        var whole = new XxHash64();
        long at = 0;
        byte[] Take(int n, bool hashed = true)
        {
            if (at + n > length) throw new InvalidDataException($"'{path}' is truncated: it ends inside {(at >= length ? "its last record" : "a record")}.");
            var b = new byte[n];
            if (file.ReadAt(b, at) != n) throw new InvalidDataException($"'{path}' is truncated: it ended while it was read.");
            at += n;
            if (hashed) whole.Append(b);
            return b;
        }
        if (length < Magic.Length || !Take(Magic.Length).AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not a device-state file written by Save-VfioDeviceState.");
        var fixedHeader = Take(FixedHeaderSize);
        var strings = new byte[5][];
        for (int i = 0; i < strings.Length; i++) strings[i] = Take(BinaryPrimitives.ReadUInt16LittleEndian(Take(2)));
        var chunks = new List<StateChunk>();
        ulong pre = 0, stop = 0;
        int largest = 0;
        var data = new byte[1 << 20];
        while (true)
        {
            if (at + 4 > length) throw new InvalidDataException($"'{path}' is incomplete: it has no trailer (the save did not finish).");
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
            if (magic == TrailerMagic) break;
            if (magic != ChunkMagic) throw new InvalidDataException($"'{path}' is damaged: no chunk starts at byte {at - 4}.");
            var h = Take(ChunkHeaderSize - 4);
            var phase = (MigrationPhase)h[0];
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(4));
            ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(h.AsSpan(8));
            if (phase is not (MigrationPhase.PreCopy or MigrationPhase.StopCopy) || h[1] != 0 || h[2] != 0 || h[3] != 0 || size > MaxChunk)
                throw new InvalidDataException($"'{path}' is damaged: the chunk at byte {at - ChunkHeaderSize} has a bad header.");
            long offset = at;
            if (at + size > length) throw new InvalidDataException($"'{path}' is truncated: it ends inside the chunk at byte {offset}.");
            var chunkHash = new XxHash64();
            for (long left = size; left > 0;)
            {
                int n = (int)Math.Min(left, data.Length);
                if (file.ReadAt(data.AsSpan(0, n), at) != n) throw new InvalidDataException($"'{path}' is truncated: it ended while it was read.");
                chunkHash.Append(data.AsSpan(0, n));
                at += n;
                left -= n;
            }
            if (chunkHash.GetCurrentHashAsUInt64() != hash) throw new InvalidDataException($"'{path}' is damaged: the chunk at byte {offset} does not match its checksum.");
            chunks.Add(new StateChunk(phase, offset, (int)size, hash));
            largest = Math.Max(largest, (int)size);
            if (phase == MigrationPhase.PreCopy) pre += size; else stop += size;
        }
        var t = Take(TrailerSize - 4 - 8);
        ulong expected = whole.GetCurrentHashAsUInt64();
        var last = Take(8, hashed: false);
        if (BinaryPrimitives.ReadUInt64LittleEndian(last) != expected)
        {
            ushort v = BinaryPrimitives.ReadUInt16LittleEndian(fixedHeader);
            throw new InvalidDataException(v == Version
                ? $"'{path}' is damaged: the file does not match its checksum."
                : $"'{path}' is damaged, or a version {v} state file (this module reads version {Version}): it does not match its checksum.");
        }
        if (at != length) throw new InvalidDataException($"'{path}' has {length - at} bytes after its trailer.");

        // The structure holds: from here on the header's fields are what the writer wrote.
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(fixedHeader);
        if (version != Version) throw new InvalidDataException($"'{path}' is a version {version} state file; this module reads version {Version}.");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(t);
        ulong tPre = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(4));
        ulong tStop = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(12));
        ulong tTotal = BinaryPrimitives.ReadUInt64LittleEndian(t.AsSpan(20));
        if (count != chunks.Count || tPre != pre || tStop != stop || tTotal != pre + stop)
            throw new InvalidDataException($"'{path}' is damaged: its trailer counts {count} chunks and {tTotal} bytes, the file holds {chunks.Count} and {pre + stop}.");
        var protocol = (MigrationProtocol)BinaryPrimitives.ReadUInt16LittleEndian(fixedHeader.AsSpan(2));
        if (!Enum.IsDefined(protocol)) throw new InvalidDataException($"'{path}' names an unknown migration protocol ({(int)protocol}).");
        ulong pageSize = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader.AsSpan(4));
        long savedMs = (long)BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader.AsSpan(12));
        if (savedMs < 0 || savedMs > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
            throw new InvalidDataException($"'{path}' has an impossible save time ({savedMs} ms after 1970).");
        string S(int i) => Encoding.UTF8.GetString(strings[i]);
        return new Contents
        {
            Path = path,
            Identity = new DeviceIdentity { Name = S(0), Protocol = protocol, Bus = S(1), Model = S(2), Driver = S(3), Host = S(4) },
            PageSize = pageSize,
            Saved = DateTimeOffset.FromUnixTimeMilliseconds(savedMs),
            Chunks = chunks,
            PreCopyBytes = pre,
            StopCopyBytes = stop,
            MaxChunkLength = largest,
        };
    }

    private static void Add16(List<byte> b, ushort v) { b.Add((byte)v); b.Add((byte)(v >> 8)); }

    private static void Add64(List<byte> b, ulong v) { for (int i = 0; i < 8; i++) b.Add((byte)(v >> (8 * i))); }
}
