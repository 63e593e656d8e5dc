using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// A saving session: the stream a device produces from the moment it enters PRE_COPY or STOP_COPY
/// (v2) or sets _SAVING (v1) until the session ends. One stream per session whatever state comes next
/// (PRE_COPY_P2P → STOP_COPY continues it, as mtty's saving_migf does).
///
/// Stream = the first InitialBytes of the image (pre-copy "initial data"), then records for the blocks
/// the running device changed (pre-copy "dirty data"), then, once stopped, the rest of the image.
/// Entering STOP_COPY directly gives just the image. For the lab's mtty-2 (24 + 72 bytes) this is exactly
/// mtty's stream: the 24-byte header in pre-copy, the 72 bytes of port state at stop-copy.
/// </summary>
internal sealed class SimSaveSession
{
    private readonly SimStateImage _image;
    private readonly long _initialEnd;
    private readonly Queue<Segment> _segments = new();
    private long _headOffset;

    private SimSaveSession(SimStateImage image, long initialEnd)
    {
        _image = image;
        _initialEnd = initialEnd;
    }

    /// <summary>RUNNING → PRE_COPY: the initial data is offered, the device keeps running.</summary>
    public static SimSaveSession StartPreCopy(SimStateImage image, long initialBytes)
    {
        long initialEnd = Math.Clamp(initialBytes, 0, image.Size);
        var s = new SimSaveSession(image, initialEnd);
        image.ClearDirty();
        if (initialEnd > 0) s.Enqueue(new Segment(0, initialEnd, null, Initial: true));
        return s;
    }

    /// <summary>STOP → STOP_COPY: the stopped device's whole image.</summary>
    public static SimSaveSession StartStopCopy(SimStateImage image)
    {
        var s = new SimSaveSession(image, 0) { IsFinal = true };
        if (image.Size > 0) s.Enqueue(s.Tail(0));
        return s;
    }

    /// <summary>True once the device stopped: the stream ends after what is queued (read returns 0).</summary>
    public bool IsFinal { get; private set; }

    /// <summary>The session ended (the device left the saving states or was reset): reads answer ENODEV.</summary>
    public bool Disabled { get; private set; }

    /// <summary>Unread bytes of the initial data (VFIO_MIG_GET_PRECOPY_INFO initial_bytes).</summary>
    public long InitialBytes { get; private set; }

    /// <summary>Unread bytes produced since (queued dirty records and the stop-copy tail).</summary>
    public long OtherQueuedBytes { get; private set; }

    /// <summary>Dirty data not read yet: queued records plus the changed blocks not yet turned into records.</summary>
    public long DirtyBytes => IsFinal ? OtherQueuedBytes : OtherQueuedBytes + _image.DirtyRecordBytes;

    /// <summary>Everything the reader can still get now (v1 pending_bytes).</summary>
    public long PendingBytes => InitialBytes + DirtyBytes;

    /// <summary>Total bytes handed to the reader.</summary>
    public long BytesRead { get; private set; }

    /// <summary>PRE_COPY(_P2P) → STOP_COPY: changed blocks the initial data covered are queued as records, then the rest of the image.</summary>
    public void EnterStopCopy()
    {
        if (IsFinal) return;
        var records = new List<byte[]>();
        _image.TakeDirtyRecords(records, int.MaxValue, below: _initialEnd);
        _image.ClearDirty();
        foreach (var r in records) Enqueue(new Segment(0, r.Length, r, Initial: false));
        if (_image.Size > _initialEnd) Enqueue(Tail(_initialEnd));
        IsFinal = true;
    }

    /// <summary>
    /// The stop-copy tail from <paramref name="from"/>: read from the image when taken (the device is stopped),
    /// or for a register file copied now, as mtty_save_state copies the ports on entering STOP_COPY: register
    /// writes after that do not reach the stream.
    /// </summary>
    private Segment Tail(long from)
    {
        if (!_image.IsRegisterFile) return new Segment(from, _image.Size, null, Initial: false);
        var snapshot = new byte[_image.Size - from];
        _image.Read(from, snapshot);
        return new Segment(0, snapshot.Length, snapshot, Initial: false);
    }

    /// <summary>Ends the session (mtty_disable_file).</summary>
    public void Disable()
    {
        Disabled = true;
        _segments.Clear();
        InitialBytes = OtherQueuedBytes = 0;
    }

    /// <summary>Copies the next stream bytes into <paramref name="destination"/>; 0 when nothing is available now.</summary>
    public int Take(Span<byte> destination)
    {
        int done = 0;
        while (done < destination.Length)
        {
            if (_segments.Count == 0)
            {
                if (IsFinal) break;
                var records = new List<byte[]>();
                // Enough records for this read, and not the whole dirty set of a huge device at once.
                _image.TakeDirtyRecords(records, Math.Max(1, (destination.Length - done) / SimStateImage.BlockSize + 1));
                if (records.Count == 0) break;
                foreach (var r in records) Enqueue(new Segment(0, r.Length, r, Initial: false));
            }
            var head = _segments.Peek();
            int n = (int)Math.Min(head.Length - _headOffset, destination.Length - done);
            var target = destination.Slice(done, n);
            if (head.Literal is { } literal) literal.AsSpan((int)(head.From + _headOffset), n).CopyTo(target);
            else _image.Read(head.From + _headOffset, target);
            _headOffset += n;
            done += n;
            if (head.Initial) InitialBytes -= n;
            else OtherQueuedBytes -= n;
            if (_headOffset == head.Length)
            {
                _segments.Dequeue();
                _headOffset = 0;
            }
        }
        BytesRead += done;
        return done;
    }

    private void Enqueue(Segment segment)
    {
        _segments.Enqueue(segment);
        if (segment.Initial) InitialBytes += segment.Length;
        else OtherQueuedBytes += segment.Length;
    }

    /// <summary>Stream bytes: image range [From, To) read when taken, or literal record bytes.</summary>
    private readonly record struct Segment(long From, long To, byte[]? Literal, bool Initial)
    {
        public long Length => To - From;
    }
}

/// <summary>
/// A resuming session: the bytes written to the RESUMING data fd (v2) or consumed through data_size (v1),
/// checked as mtty checks them and loaded into the device when it leaves RESUMING.
/// </summary>
internal sealed class SimResumeSession
{
    /// <summary>Beyond the image, how many bytes of dirty records a stream may carry (the simulator keeps streams in memory).</summary>
    public const long MaxRecordBytes = 256L * 1024 * 1024;

    private readonly SimStateImage _image;
    private readonly long _initialBytes;
    private readonly MemoryStream _received = new();

    public SimResumeSession(SimStateImage image, long initialBytes)
    {
        _image = image;
        _initialBytes = Math.Clamp(initialBytes, 0, image.Size);
    }

    public bool Disabled { get; private set; }

    public long Length => _received.Length;

    public void Disable()
    {
        Disabled = true;
        _received.SetLength(0);
    }

    /// <summary>
    /// Appends stream bytes: the count, or -errno. Like mtty_resume_write: ENODEV once disabled, ENOMEM past
    /// what the device can take, and EFAULT when the write completes a header that does not match this
    /// device (the bytes are kept, so the load fails too).
    /// </summary>
    public long Write(ReadOnlySpan<byte> data)
    {
        // mtty_resume_write: a write reaching past what the device takes is ENOMEM before anything else is
        // looked at. A register file (mtty) takes exactly its state; other devices also take dirty records.
        long limit = _image.IsRegisterFile ? _image.Size : Math.Min(int.MaxValue, _image.Size + MaxRecordBytes);
        if (_received.Length + data.Length > limit) return -Errno.ENOMEM;
        if (Disabled) return -Errno.ENODEV;
        long before = _received.Length;
        _received.Write(data);
        int header = _image.HeaderLength;
        if (before < header && _received.Length >= header && !HeaderMatches()) return -Errno.EFAULT;
        return data.Length;
    }

    /// <summary>RESUMING → STOP (v2) or clearing _RESUMING (v1): validates and loads the stream; 0 or -EINVAL.</summary>
    public int Load()
    {
        if (Disabled) return -Errno.ENODEV;
        var stream = _received.GetBuffer().AsSpan(0, (int)_received.Length);
        // mtty_load_state: fewer bytes than the device's state → EINVAL. It does not look at the header again:
        // the write that completed a bad header answered EFAULT, but its bytes were taken, and a client that
        // went on to STOP loads them (the real driver does; kernel-interface.md lab 12).
        if (stream.Length < _image.Size) return -Errno.EINVAL;
        var image = new byte[_image.Size];
        long middle = stream.Length - _image.Size;
        if (middle == 0)
        {
            stream.CopyTo(image);
        }
        else
        {
            // Initial data, then dirty records, then the stop-copy tail (SimSaveSession's layout).
            stream.Slice(0, (int)_initialBytes).CopyTo(image);
            var records = stream.Slice((int)_initialBytes, (int)middle);
            while (records.Length > 0)
            {
                if (records.Length < SimStateImage.RecordHeaderSize) return -Errno.EINVAL;
                ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(records);
                ulong length = BinaryPrimitives.ReadUInt64LittleEndian(records.Slice(8));
                if (length > (ulong)(records.Length - SimStateImage.RecordHeaderSize) || offset > (ulong)image.Length || length > (ulong)image.Length - offset)
                    return -Errno.EINVAL;
                records.Slice(SimStateImage.RecordHeaderSize, (int)length).CopyTo(image.AsSpan((int)offset));
                records = records.Slice(SimStateImage.RecordHeaderSize + (int)length);
            }
            stream.Slice((int)(_initialBytes + middle)).CopyTo(image.AsSpan((int)_initialBytes));
        }
        _image.Load(image);
        return 0;
    }

    private bool HeaderMatches()
    {
        int header = _image.HeaderLength;
        return _received.Length >= header && _received.GetBuffer().AsSpan(0, header).SequenceEqual(_image.Header);
    }
}
