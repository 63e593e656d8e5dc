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
    // Set once the session outlived its end (SimDefect.StaleDataFdReadable): the device's state as the session
    // ended, which the rest of the stream is read from and which is served again whenever it runs out.
    private byte[]? _afterEnd;

    private SimSaveSession(SimStateImage image, long initialEnd)
    {
        _image = image;
        _initialEnd = initialEnd;
    }

    /// <summary>RUNNING → PRE_COPY: the initial data is offered, the device keeps running.</summary>
    public static SimSaveSession StartPreCopy(SimStateImage image, long initialBytes)
    {
        long initialEnd = Math.Clamp(initialBytes, 0, image.Size);
        var s = new SimSaveSession(image, initialEnd) { StartedInPreCopy = true };
        image.ClearDirty();
        if (initialEnd > 0) s.Enqueue(new Segment(0, initialEnd, null, Initial: true));
        return s;
    }

    /// <summary>
    /// STOP → STOP_COPY: the stopped device's whole image; with <paramref name="counter"/>, its last 8 bytes
    /// replaced by that counter (SimDefect.SaveNotRepeatable).
    /// </summary>
    public static SimSaveSession StartStopCopy(SimStateImage image, ulong? counter = null)
    {
        var s = new SimSaveSession(image, 0) { IsFinal = true };
        if (image.Size > 0) s.EnqueueTail(0, counter);
        return s;
    }

    /// <summary>A session with nothing to read, already at its end (the data fd SimDefect.DataFdOnWrongArc hands out).</summary>
    public static SimSaveSession Empty(SimStateImage image) => new(image, 0) { IsFinal = true };

    /// <summary>The session began in PRE_COPY(_P2P) (v2) or with _SAVING|_RUNNING (v1), not directly in stop-copy.</summary>
    public bool StartedInPreCopy { get; private init; }

    /// <summary>Bytes of initial data the session offered when it began (PRECOPY_INFO initial_bytes before any read).</summary>
    public long InitialDataLength => _initialEnd;

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

    /// <summary>
    /// PRE_COPY(_P2P) → STOP_COPY: changed blocks the initial data covered are queued as records, then the rest
    /// of the image; with <paramref name="counter"/>, the image's last 8 bytes replaced by that counter.
    /// </summary>
    public void EnterStopCopy(ulong? counter = null)
    {
        if (IsFinal) return;
        var records = new List<byte[]>();
        _image.TakeDirtyRecords(records, int.MaxValue, below: _initialEnd);
        _image.ClearDirty();
        foreach (var r in records) Enqueue(new Segment(0, r.Length, r, Initial: false));
        if (_image.Size > _initialEnd) EnqueueTail(_initialEnd, counter);
        IsFinal = true;
    }

    /// <summary>
    /// Queues the stop-copy tail from <paramref name="from"/>: read from the image when taken (the device is
    /// stopped), or for a register file copied now, as mtty_save_state copies the ports on entering STOP_COPY:
    /// register writes after that do not reach the stream. A <paramref name="counter"/> takes the place of the
    /// last 8 bytes (the configuration makes sure they lie in the tail).
    /// </summary>
    private void EnqueueTail(long from, ulong? counter)
    {
        int counterBytes = counter is null ? 0 : SimHostConfiguration.SaveCounterBytes;
        long end = _image.Size - counterBytes;
        if (!_image.IsRegisterFile)
        {
            Enqueue(new Segment(from, end, null, Initial: false));
        }
        else
        {
            var snapshot = new byte[end - from];
            _image.Read(from, snapshot);
            Enqueue(new Segment(0, snapshot.Length, snapshot, Initial: false));
        }
        if (counter is ulong value)
        {
            var bytes = new byte[counterBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            Enqueue(new Segment(0, bytes.Length, bytes, Initial: false));
        }
    }

    /// <summary>Ends the session (mtty_disable_file).</summary>
    public void Disable()
    {
        Disabled = true;
        _segments.Clear();
        InitialBytes = OtherQueuedBytes = 0;
    }

    /// <summary>
    /// The device ended the session without disabling its file (SimDefect.StaleDataFdReadable): the fd goes
    /// on with what was queued, then the device's state as it was now, from the start, again and again. Read
    /// from a copy, because the device may run and change its state while the stale fd is read; the changed
    /// blocks not yet queued stay with the device, whose next session starts from them.
    /// </summary>
    public void KeepReadableAfterEnd()
    {
        _afterEnd = _image.ToArray();
        IsFinal = true;
    }

    /// <summary>Copies the next stream bytes into <paramref name="destination"/>; 0 when nothing is available now.</summary>
    public int Take(Span<byte> destination)
    {
        int done = 0;
        while (done < destination.Length)
        {
            if (_segments.Count == 0 && _afterEnd is { Length: > 0 } again)
                Enqueue(new Segment(0, again.Length, again, Initial: false));
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
            else if (_afterEnd is not null) _afterEnd.AsSpan((int)(head.From + _headOffset), n).CopyTo(target);
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
    private readonly bool _discard;
    private readonly int _ignoredTrailer;

    /// <summary>
    /// A session for <paramref name="image"/>. <paramref name="discard"/> (SimDefect.ResumingAcceptsGarbage):
    /// every write is taken and thrown away, and the load succeeds and loads nothing.
    /// <paramref name="ignoredTrailer"/> (SimDefect.SaveNotRepeatable): the stream's last bytes are the
    /// driver's counter, not state, and the load keeps the device's own bytes there.
    /// </summary>
    public SimResumeSession(SimStateImage image, long initialBytes, bool discard = false, int ignoredTrailer = 0)
    {
        _image = image;
        _initialBytes = Math.Clamp(initialBytes, 0, image.Size);
        _discard = discard;
        _ignoredTrailer = ignoredTrailer;
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
        if (_discard) return Disabled ? -Errno.ENODEV : data.Length;
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
        if (_discard) return 0;
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
        if (_ignoredTrailer > 0) _image.Read(_image.Size - _ignoredTrailer, image.AsSpan(image.Length - _ignoredTrailer));
        _image.Load(image);
        return 0;
    }

    private bool HeaderMatches()
    {
        int header = _image.HeaderLength;
        return _received.Length >= header && _received.GetBuffer().AsSpan(0, header).SequenceEqual(_image.Header);
    }
}
