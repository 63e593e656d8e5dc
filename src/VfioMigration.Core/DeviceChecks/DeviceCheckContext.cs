using System;
using System.Collections.Generic;
using System.Globalization;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.DeviceChecks;

/// <summary>A check found the device breaking its rule.</summary>
internal sealed class CheckFailedException : Exception
{
    public CheckFailedException(string expected, string actual) : base($"expected {expected}; the device {actual}")
    {
        Expected = expected;
        Actual = actual;
    }

    public string Expected { get; }

    public string Actual { get; }
}

/// <summary>A check cannot run on this device (a capability it does not claim, no peer, a host limitation).</summary>
internal sealed class CheckSkippedException : Exception
{
    public CheckSkippedException(string reason) : base(reason) { }
}

/// <summary>
/// What a check works with: the device (and its peer), its claimed migration support, and the raw calls the
/// checks are made of. The calls are the kernel's own (one SET per request, data fds read and written as
/// they come back), not the module's migration engine: a check must see exactly what the driver answers,
/// where the engine would retry, plan around or translate it. Every data fd a check opens is closed when
/// the check ends.
/// </summary>
public sealed class DeviceCheckContext
{
    // Data fds are read in pieces of this size; a stream longer than the limit is taken as one that never ends.
    private const int ReadPiece = 64 * 1024;
    private readonly List<SafeFd> _opened = new();

    internal DeviceCheckContext(VfioDevice device, VfioDevice? peer, VfioContainer? container)
    {
        Device = device;
        Peer = peer;
        Container = container;
        Support = device.Migration;
    }

    public VfioDevice Device { get; }

    /// <summary>The second device (-Peer), or null: a good stream is then restored into the device itself. Bad streams always go into the device under test.</summary>
    public VfioDevice? Peer { get; }

    /// <summary>The container the device's group is in (DMA logging checks map memory there), or null.</summary>
    public VfioContainer? Container { get; }

    public MigrationSupport Support { get; }

    /// <summary>v2 flags (STOP_COPY, P2P, PRE_COPY).</summary>
    public ulong Flags => Support.Flags;

    public bool Claims(ulong flag) => (Flags & flag) == flag;

    /// <summary>Where a good stream is restored: the peer, else the device itself.</summary>
    public VfioDevice Target => Peer ?? Device;

    /// <summary>Upper bound of a stream before the check calls it endless: 64 times what the driver announced, at least 256 MiB.</summary>
    internal long StreamLimit { get; set; } = 256L << 20;

    internal void Close()
    {
        foreach (var fd in _opened) fd.Dispose();
        _opened.Clear();
    }

    #region Assertions

    /// <summary>Fails the check unless <paramref name="condition"/> holds.</summary>
    public static void Expect(bool condition, string expected, string actual)
    {
        if (!condition) throw new CheckFailedException(expected, actual);
    }

    public static void Fail(string expected, string actual) => throw new CheckFailedException(expected, actual);

    public static void Skip(string reason) => throw new CheckSkippedException(reason);

    /// <summary>"EINVAL", "0" ... for a result.</summary>
    public static string Answer(long rc) => rc < 0 ? Errno.Name((int)-rc) : rc.ToString(CultureInfo.InvariantCulture);

    public static string StateName(uint state) => state < VFIO_DEVICE_STATE_NR ? MigrationFsm.Name((VfioMigrationState)state) : state.ToString(CultureInfo.InvariantCulture);

    #endregion

    #region v2 state

    /// <summary>GET MIG_DEVICE_STATE; a failing GET fails the check (every v2 driver answers it).</summary>
    public uint GetState(VfioDevice device)
    {
        Span<byte> payload = stackalloc byte[8];
        StructBytes.Write(payload, new vfio_device_feature_mig_state { data_fd = -1 });
        int rc = device.TryFeature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_GET, payload);
        if (rc < 0) Fail("GET MIG_DEVICE_STATE to answer", $"answered {Answer(rc)}");
        return StructBytes.Read<vfio_device_feature_mig_state>(payload).device_state;
    }

    /// <summary>
    /// One SET MIG_DEVICE_STATE as the user space of the contract makes it: the result, and the data_fd
    /// field (a descriptor, adopted and closed at the end of the check, or -1).
    /// </summary>
    public int SetState(VfioDevice device, uint state, out SafeFd? dataFd, out int rawFd)
    {
        Span<byte> payload = stackalloc byte[8];
        StructBytes.Write(payload, new vfio_device_feature_mig_state { device_state = state, data_fd = -1 });
        int rc = device.TryFeature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET, payload, $"SET MIG_DEVICE_STATE={StateName(state)}");
        rawFd = rc < 0 ? -1 : StructBytes.Read<vfio_device_feature_mig_state>(payload).data_fd;
        dataFd = null;
        if (rc >= 0 && rawFd >= 0)
        {
            dataFd = device.Host.Adopt(rawFd, $"{device.Name} migration data");
            _opened.Add(dataFd);
        }
        return rc;
    }

    public int SetState(VfioDevice device, uint state, out SafeFd? dataFd) => SetState(device, state, out dataFd, out _);

    /// <summary>SET to <paramref name="state"/> (the kernel walks its path) and fail the check if the device does not get there.</summary>
    public SafeFd? Reach(VfioDevice device, uint state, string why)
    {
        int rc = SetState(device, state, out var fd);
        if (rc < 0) Fail($"{StateName(state)} to be reachable ({why})", $"answered {Answer(rc)} from {StateName(GetState(device))}");
        uint now = GetState(device);
        Expect(now == state, $"GET to answer {StateName(state)} after the SET succeeded", $"answered {StateName(now)}");
        return fd;
    }

    #endregion

    #region Data fds

    /// <summary>read() on a data fd: bytes read or -errno.</summary>
    public long Read(SafeFd fd, Span<byte> buffer) => Device.Host.TryRead(fd, buffer);

    /// <summary>
    /// Reads a saving fd until read() answers 0; fails the check on an error, or when the stream passes
    /// <see cref="StreamLimit"/> (a stream that never ends would hold a migration for ever).
    /// </summary>
    public byte[] ReadToEnd(SafeFd fd, string what)
    {
        var stream = new List<byte>();
        var buffer = new byte[ReadPiece];
        while (true)
        {
            long n = Device.Host.TryRead(fd, buffer);
            if (n == 0) return stream.ToArray();
            if (n < 0) Fail($"read() of the {what} to end with 0 (end of stream)", $"answered {Answer(n)} after {stream.Count} bytes");
            stream.AddRange(new ArraySegment<byte>(buffer, 0, (int)n));
            if (stream.Count > StreamLimit) Fail($"the {what} to end", $"gave more than {StreamLimit} bytes and was still going");
        }
    }

    /// <summary>write() the whole stream to a RESUMING fd; returns 0 or the first failing write's -errno.</summary>
    public long WriteAll(SafeFd fd, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            long n = Device.Host.TryWrite(fd, data);
            if (n < 0) return n;
            if (n == 0) return -Errno.EIO;
            data = data.Slice((int)n);
        }
        return 0;
    }

    /// <summary>VFIO_MIG_GET_PRECOPY_INFO on a data fd: the result and the two counters.</summary>
    public (int Rc, ulong Initial, ulong Dirty) PrecopyInfo(SafeFd fd)
    {
        var info = StructBytes.Buffer(new vfio_precopy_info { argsz = (uint)StructBytes.SizeOf<vfio_precopy_info>() });
        int rc = Device.Host.TryIoctl(fd, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO, info);
        var p = StructBytes.Read<vfio_precopy_info>(info);
        return (rc, p.initial_bytes, p.dirty_bytes);
    }

    /// <summary>VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the driver's estimate of the stop-copy bytes, or null when it has none (ENOTTY).</summary>
    public ulong? StopCopyEstimate(VfioDevice device)
    {
        Span<byte> size = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_mig_data_size>()];
        int rc = device.TryFeature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET, size);
        if (rc == -Errno.ENOTTY) return null;
        if (rc < 0) Fail("GET MIG_DATA_SIZE to answer or to be absent (ENOTTY)", $"answered {Answer(rc)}");
        return StructBytes.Read<vfio_device_feature_mig_data_size>(size).stop_copy_length;
    }

    #endregion

    #region Whole operations

    /// <summary>
    /// A stop-copy save of a device in STOP (or RUNNING: it is stopped first): STOP → STOP_COPY, the fd
    /// read to its end, → STOP. The device is left in STOP.
    /// </summary>
    public byte[] SaveStopCopy(VfioDevice device)
    {
        if (GetState(device) != VFIO_DEVICE_STATE_STOP) Reach(device, VFIO_DEVICE_STATE_STOP, "a save starts from STOP");
        var fd = Reach(device, VFIO_DEVICE_STATE_STOP_COPY, "STOP -> STOP_COPY starts a save");
        if (fd is null) Fail("STOP -> STOP_COPY to return a data fd", "returned data_fd -1");
        var bytes = ReadToEnd(fd!, "stop-copy stream");
        Reach(device, VFIO_DEVICE_STATE_STOP, "STOP_COPY -> STOP ends a save");
        return bytes;
    }

    /// <summary>
    /// STOP → RESUMING, the stream written, then the SET to STOP that loads it. Returns 0 when both took
    /// it, else the first refusal's -errno: what a restore's success turns on.
    /// </summary>
    public int Restore(VfioDevice device, ReadOnlySpan<byte> stream)
    {
        var (written, loaded) = RestoreSteps(device, stream);
        return written < 0 ? (int)written : loaded;
    }

    /// <summary>The two answers of a restore: the write() of the stream (0 or -errno) and the SET RESUMING → STOP.</summary>
    public (long Written, int Loaded) RestoreSteps(VfioDevice device, ReadOnlySpan<byte> stream)
    {
        if (GetState(device) != VFIO_DEVICE_STATE_STOP) Reach(device, VFIO_DEVICE_STATE_STOP, "a restore starts from STOP");
        var fd = Reach(device, VFIO_DEVICE_STATE_RESUMING, "STOP -> RESUMING starts a restore");
        if (fd is null) Fail("STOP -> RESUMING to return a data fd", "returned data_fd -1");
        long written = WriteAll(fd!, stream);
        int loaded = SetState(device, VFIO_DEVICE_STATE_STOP, out _);
        return (written, loaded);
    }

    /// <summary>VFIO_DEVICE_RESET: 0 or -errno.</summary>
    public int Reset(VfioDevice device) => device.Host.TryIoctlValue(device.Fd, VfioIoctl.VFIO_DEVICE_RESET, 0);

    #endregion
}
