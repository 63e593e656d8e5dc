using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;
using VfioMigration.Core.Native;
using static VfioMigration.Core.DeviceChecks.DeviceCheckContext;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.DeviceChecks;

/// <summary>
/// The checks of the v2 protocol (VFIO_DEVICE_FEATURE MIGRATION / MIG_DEVICE_STATE and the data fd), each from
/// a sentence of include/uapi/linux/vfio.h or of drivers/vfio/vfio_main.c, which the check names.
/// </summary>
internal static class V2Checks
{
    private const uint STOP = VFIO_DEVICE_STATE_STOP, RUNNING = VFIO_DEVICE_STATE_RUNNING, STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY,
        RESUMING = VFIO_DEVICE_STATE_RESUMING, RUNNING_P2P = VFIO_DEVICE_STATE_RUNNING_P2P, PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY,
        PRE_COPY_P2P = VFIO_DEVICE_STATE_PRE_COPY_P2P, ERROR = VFIO_DEVICE_STATE_ERROR;

    private const string VfioH = "include/uapi/linux/vfio.h";
    private const ulong KnownFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

    private static string? V2Only(DeviceCheckContext c) => c.Support.Protocol == MigrationProtocol.V2 ? null : "the device has no v2 migration driver";

    private static string? PreCopyOnly(DeviceCheckContext c) => V2Only(c) ?? (c.Claims(VFIO_MIGRATION_PRE_COPY) ? null : "the device does not claim PRE_COPY");

    private static bool Supports(DeviceCheckContext c, uint state) => state != ERROR && state < VFIO_DEVICE_STATE_NR && MigrationFsm.Supports(c.Flags, (VfioMigrationState)state);

    private static IEnumerable<uint> SupportedStates(DeviceCheckContext c) =>
        new[] { STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P }.Where(s => Supports(c, s));

    /// <summary>The kernel's path from one state to another, or null where it allows none (a path through ERROR).</summary>
    private static IReadOnlyList<VfioMigrationState>? KernelPath(DeviceCheckContext c, uint from, uint to)
    {
        try { return MigrationFsm.Path((VfioMigrationState)from, (VfioMigrationState)to, c.Flags); }
        catch (VfioRuleException) { return null; }
    }

    /// <summary>The arcs the kernel's table makes direct between the states the device supports.</summary>
    private static IEnumerable<(uint From, uint To)> DirectArcs(DeviceCheckContext c) =>
        from a in SupportedStates(c)
        from b in SupportedStates(c)
        where a != b && KernelPath(c, a, b) is { Count: 1 }
        select (a, b);

    /// <summary>Brings the device to <paramref name="state"/> from wherever it is (a reset first if it sits in RESUMING or ERROR).</summary>
    private static void From(DeviceCheckContext c, uint state)
    {
        uint now = c.GetState(c.Device);
        if (now == state) return;
        if (now is RESUMING or ERROR)
        {
            int rc = c.Reset(c.Device);
            if (rc < 0) Skip($"the device sits in {StateName(now)} and does not answer VFIO_DEVICE_RESET ({Answer(rc)})");
            now = RUNNING;
        }
        // The kernel allows no way from STOP_COPY back to pre-copy: such a start goes through RUNNING.
        if (now != RUNNING && KernelPath(c, now, state) is null) c.Reach(c.Device, RUNNING, $"on the way from {StateName(now)} to {StateName(state)}");
        c.Reach(c.Device, state, $"the check starts from {StateName(state)}");
    }

    public static IEnumerable<DeviceCheck> All()
    {
        yield return new DeviceCheck("protocol.migration-present", "Protocol", CheckSeverity.Must,
            "The device offers migration: VFIO_DEVICE_FEATURE_MIGRATION answers (v2), or it has the 5.8 migration region (v1).",
            $"{VfioH}: VFIO_DEVICE_FEATURE_MIGRATION (\"... the device supports migration\"); VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED",
            c => Expect(c.Support.Protocol != MigrationProtocol.None, "a v2 migration driver or a v1 migration region",
                "offers neither (GET MIGRATION answers ENOTTY and no region is of the migration type): it cannot be migrated"));

        yield return new DeviceCheck("protocol.stop-copy-claimed", "Protocol", CheckSeverity.Must,
            "VFIO_DEVICE_FEATURE_MIGRATION answers flags that include VFIO_MIGRATION_STOP_COPY and no bit the kernel does not define.",
            $"{VfioH}: VFIO_DEVICE_FEATURE_MIGRATION (\"VFIO_MIGRATION_STOP_COPY ... must be set\"); vfio_main.c vfio_ioctl_device_feature_migration",
            c =>
            {
                Expect((c.Flags & VFIO_MIGRATION_STOP_COPY) != 0, "STOP_COPY among the flags", $"claims {MigrationFsm.FlagNames(c.Flags)}");
                Expect((c.Flags & ~KnownFlags) == 0, "only STOP_COPY, P2P and PRE_COPY", $"also claims bits 0x{c.Flags & ~KnownFlags:x}");
            }, V2Only);

        yield return new DeviceCheck("protocol.reset-to-running", "Protocol", CheckSeverity.Must,
            "VFIO_DEVICE_RESET returns the device to RUNNING from any state, data sessions ended.",
            $"{VfioH}: enum vfio_device_mig_state (\"The device is reset ... to RUNNING\"); VFIO_DEVICE_RESET",
            c =>
            {
                From(c, STOP);
                int rc = c.Reset(c.Device);
                if (rc is -Errno.ENOTTY or -Errno.EINVAL) Skip($"the device does not support VFIO_DEVICE_RESET ({Answer(rc)})");
                Expect(rc == 0, "VFIO_DEVICE_RESET to answer 0", $"answered {Answer(rc)}");
                uint now = c.GetState(c.Device);
                Expect(now == RUNNING, "GET to answer RUNNING after the reset", $"answered {StateName(now)}");
            }, V2Only);

        yield return new DeviceCheck("arcs.direct", "Arcs", CheckSeverity.Must,
            "Every arc the kernel's table makes direct between the states the device's flags allow succeeds when requested by itself, and GET then answers the new state (RESUMING -> STOP needs a stream: arcs.resuming checks it).",
            "drivers/vfio/vfio_main.c: vfio_from_fsm_table and the arcs a driver must implement (comment above it)",
            c =>
            {
                foreach (var (from, to) in DirectArcs(c))
                {
                    if (from == RESUMING) continue;
                    From(c, from);
                    int rc = c.SetState(c.Device, to, out _);
                    Expect(rc == 0, $"the arc {StateName(from)} -> {StateName(to)} to succeed", $"answered {Answer(rc)}");
                    uint now = c.GetState(c.Device);
                    Expect(now == to, $"GET to answer {StateName(to)} after {StateName(from)} -> {StateName(to)}", $"answered {StateName(now)}");
                }
            }, V2Only);

        yield return new DeviceCheck("arcs.multi-step", "Arcs", CheckSeverity.Must,
            "A request whose state is several arcs away lands in that state in one SET: the driver walks vfio_mig_get_next_state's path to the end.",
            "drivers/vfio/vfio_main.c: vfio_mig_get_next_state (\"the driver ... call[s] it repeatedly\"); vfio.h: combination transitions",
            c =>
            {
                foreach (uint from in SupportedStates(c).Where(s => s != RESUMING))
                {
                    foreach (uint to in SupportedStates(c))
                    {
                        if (from == to || KernelPath(c, from, to) is not { Count: > 1 } path) continue;
                        From(c, from);
                        int rc = c.SetState(c.Device, to, out _);
                        string route = StateName(from) + " -> " + string.Join(" -> ", path.Select(MigrationFsm.Name));
                        Expect(rc == 0, $"{StateName(from)} to {StateName(to)} (the kernel's path {route}) to succeed", $"answered {Answer(rc)}, in {StateName(c.GetState(c.Device))}");
                        uint now = c.GetState(c.Device);
                        Expect(now == to, $"GET to answer {StateName(to)} after the path {route}", $"answered {StateName(now)}");
                    }
                }
            }, V2Only);

        yield return new DeviceCheck("arcs.refused-einval", "Arcs", CheckSeverity.Must,
            "A request the device cannot take (a state its flags do not allow, ERROR, a value past the last state, STOP_COPY back to pre-copy) answers EINVAL and leaves the state as it was.",
            "drivers/vfio/vfio_main.c: vfio_mig_get_next_state (-EINVAL for unsupported states and for paths through ERROR); vfio.h: \"STOP_COPY -> PRE_COPY ... not permitted\"",
            c =>
            {
                var requests = new List<(uint From, uint To)>();
                foreach (uint from in new[] { RUNNING, STOP })
                {
                    requests.Add((from, ERROR));
                    requests.Add((from, VFIO_DEVICE_STATE_NR));
                    foreach (uint s in new[] { RUNNING_P2P, PRE_COPY, PRE_COPY_P2P }.Where(s => !Supports(c, s))) requests.Add((from, s));
                }
                foreach (uint s in new[] { PRE_COPY, PRE_COPY_P2P }.Where(s => Supports(c, s))) requests.Add((STOP_COPY, s));
                foreach (var (from, to) in requests)
                {
                    From(c, from);
                    int rc = c.SetState(c.Device, to, out _);
                    Expect(rc == -Errno.EINVAL, $"a request for {StateName(to)} from {StateName(from)} to answer EINVAL", $"answered {Answer(rc)}");
                    uint now = c.GetState(c.Device);
                    Expect(now == from, $"the refused request to leave the device in {StateName(from)}", $"is in {StateName(now)}");
                }
            }, V2Only);

        yield return new DeviceCheck("datafd.opening-arcs", "DataFd", CheckSeverity.Must,
            "The arcs that start a session (RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P, STOP -> STOP_COPY, STOP -> RESUMING) return a new data_fd; every other arc returns data_fd -1.",
            $"{VfioH}: struct vfio_device_feature_mig_state (\"data_fd ... -1 if no fd was opened\") and the arcs' descriptions",
            c =>
            {
                foreach (var (from, to) in DirectArcs(c))
                {
                    if (from == RESUMING) continue;
                    From(c, from);
                    int rc = c.SetState(c.Device, to, out _, out int fd);
                    Expect(rc == 0, $"the arc {StateName(from)} -> {StateName(to)} to succeed", $"answered {Answer(rc)}");
                    bool opens = MigrationFsm.OpensDataFd((VfioMigrationState)from, (VfioMigrationState)to);
                    if (opens) Expect(fd >= 0, $"{StateName(from)} -> {StateName(to)} to return a data fd", "returned data_fd -1");
                    else Expect(fd == -1, $"{StateName(from)} -> {StateName(to)} to return data_fd -1", $"returned descriptor {fd}");
                }
            }, V2Only);

        yield return new DeviceCheck("datafd.ended-by-arc", "DataFd", CheckSeverity.Must,
            "The arc that ends a saving session (STOP_COPY -> STOP, PRE_COPY -> RUNNING) ends its fd too: a read() of the old fd gives no more data.",
            $"{VfioH}: \"STOP_COPY -> STOP ... terminates the data transfer session\"; \"PRE_COPY -> RUNNING ... terminates the data transfer session\"",
            c =>
            {
                var buffer = new byte[4096];
                var sessions = new List<(uint Start, uint Saving, uint End)> { (STOP, STOP_COPY, STOP) };
                if (c.Claims(VFIO_MIGRATION_PRE_COPY)) sessions.Add((RUNNING, PRE_COPY, RUNNING));
                foreach (var (start, saving, end) in sessions)
                {
                    From(c, start);
                    var fd = c.Reach(c.Device, saving, "a saving session");
                    if (fd is null) Fail($"{StateName(start)} -> {StateName(saving)} to return a data fd", "returned data_fd -1");
                    c.Reach(c.Device, end, "the arc that ends the session");
                    long n = c.Read(fd!, buffer);
                    Expect(n <= 0, $"the fd of the ended {StateName(saving)} session to give no data", $"gave {n} bytes after {StateName(saving)} -> {StateName(end)}");
                }
            }, V2Only);

        yield return new DeviceCheck("datafd.end-of-stream", "DataFd", CheckSeverity.Must,
            "A STOP_COPY stream ends: read() answers 0 once every byte is read, and goes on answering 0.",
            $"{VfioH}: \"STOP_COPY ... end of stream ... read() returns 0\" (the data_fd's end of file is permanent in STOP_COPY)",
            c =>
            {
                From(c, STOP);
                var fd = c.Reach(c.Device, STOP_COPY, "STOP -> STOP_COPY starts a save");
                if (fd is null) Fail("STOP -> STOP_COPY to return a data fd", "returned data_fd -1");
                var bytes = c.ReadToEnd(fd!, "stop-copy stream");
                var buffer = new byte[4096];
                for (int i = 0; i < 2; i++)
                {
                    long n = c.Read(fd!, buffer);
                    Expect(n == 0, "read() after the end of the stream to answer 0", $"answered {Answer(n)} after {bytes.Length} bytes");
                }
            }, V2Only);

        yield return new DeviceCheck("datafd.repeatable-save", "DataFd", CheckSeverity.Must,
            "Two stop-copy saves of a device that stays stopped between them give the same bytes: a stopped device does not change its state.",
            $"{VfioH}: STOP (\"the device ... must not change its internal state\")",
            c =>
            {
                From(c, STOP);
                var a = c.SaveStopCopy(c.Device);
                var b = c.SaveStopCopy(c.Device);
                Expect(a.Length > 0, "a stop-copy stream of at least one byte", "gave an empty stream");
                ExpectSame(a, b, "the second save of the stopped device");
            }, V2Only);

        yield return new DeviceCheck("datafd.state-kept-across-run", "DataFd", CheckSeverity.Should,
            "The state survives STOP -> RUNNING -> STOP: an idle device saves the same bytes before and after it ran (a driver that re-initialises its hardware on resume loses the guest's device state).",
            $"{VfioH}: RUNNING (\"the device ... operates normally\") and STOP; run it on an idle device: one that changes its state while it runs fails it legitimately",
            c =>
            {
                From(c, STOP);
                var a = c.SaveStopCopy(c.Device);
                c.Reach(c.Device, RUNNING, "the device runs again");
                c.Reach(c.Device, STOP, "and stops");
                var b = c.SaveStopCopy(c.Device);
                ExpectSame(a, b, "the save after STOP -> RUNNING -> STOP");
            }, V2Only);

        yield return new DeviceCheck("datafd.size-estimate", "DataFd", CheckSeverity.Should,
            "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, where the driver has it, is at least the number of bytes the STOP_COPY stream then gives (QEMU decides when to stop the guest from it: an under-estimate overruns the downtime limit).",
            $"{VfioH}: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (\"the estimated data length that will be required to complete stop copy\"); QEMU vfio_state_pending_exact",
            c =>
            {
                From(c, STOP);
                if (c.StopCopyEstimate(c.Device) is not { } estimate) { Skip("the driver has no MIG_DATA_SIZE (ENOTTY)"); return; }
                var bytes = c.SaveStopCopy(c.Device);
                Expect((ulong)bytes.Length <= estimate, $"at most {estimate} bytes (MIG_DATA_SIZE in STOP)", $"gave {bytes.Length} bytes");
            }, V2Only);

        yield return new DeviceCheck("precopy.info-in-precopy-only", "PreCopy", CheckSeverity.Must,
            "VFIO_MIG_GET_PRECOPY_INFO on the saving fd answers in PRE_COPY and PRE_COPY_P2P, and EINVAL once the session is in STOP_COPY.",
            $"{VfioH}: VFIO_MIG_GET_PRECOPY_INFO (\"... returns -EINVAL if ... not in PRE_COPY or PRE_COPY_P2P\")",
            c =>
            {
                From(c, RUNNING);
                var fd = c.Reach(c.Device, PRE_COPY, "RUNNING -> PRE_COPY starts a pre-copy session");
                if (fd is null) Fail("RUNNING -> PRE_COPY to return a data fd", "returned data_fd -1");
                var (rc, _, _) = c.PrecopyInfo(fd!);
                Expect(rc == 0, "PRECOPY_INFO to answer in PRE_COPY", $"answered {Answer(rc)}");
                c.Reach(c.Device, STOP_COPY, "PRE_COPY to STOP_COPY continues the session");
                (rc, _, _) = c.PrecopyInfo(fd!);
                Expect(rc == -Errno.EINVAL, "PRECOPY_INFO to answer EINVAL in STOP_COPY", $"answered {Answer(rc)}");
            }, PreCopyOnly);

        yield return new DeviceCheck("precopy.initial-bytes-fall", "PreCopy", CheckSeverity.Must,
            "initial_bytes never grows while the pre-copy fd is read, and reaches 0 once that many bytes are read (QEMU waits for 0 before it stops the guest).",
            $"{VfioH}: struct vfio_precopy_info (\"initial_bytes ... decreases as data is read\")",
            c =>
            {
                From(c, RUNNING);
                var fd = c.Reach(c.Device, PRE_COPY, "RUNNING -> PRE_COPY starts a pre-copy session");
                if (fd is null) Fail("RUNNING -> PRE_COPY to return a data fd", "returned data_fd -1");
                var (rc, initial, _) = c.PrecopyInfo(fd!);
                Expect(rc == 0, "PRECOPY_INFO to answer in PRE_COPY", $"answered {Answer(rc)}");
                ulong start = initial, read = 0;
                // Read in eighths of the initial data, so that the counter is seen falling in steps.
                var buffer = new byte[(int)Math.Clamp(start / 8, 1, 1 << 20)];
                while (initial > 0)
                {
                    long n = c.Read(fd!, buffer);
                    if (n <= 0) Fail($"read() to give data while initial_bytes is {initial}", $"answered {Answer(n)} after {read} bytes");
                    read += (ulong)n;
                    (rc, ulong now, _) = c.PrecopyInfo(fd!);
                    Expect(rc == 0, "PRECOPY_INFO to answer in PRE_COPY", $"answered {Answer(rc)}");
                    Expect(now <= initial, $"initial_bytes not to grow (it was {initial} before a read of {n} bytes)", $"reported {now}");
                    initial = now;
                    Expect(read <= start || initial == 0, $"initial_bytes to reach 0 within the {start} bytes it announced", $"still reported {initial} after {read} bytes");
                }
            }, PreCopyOnly);

        yield return new DeviceCheck("precopy.counters-plausible", "PreCopy", CheckSeverity.Should,
            "A new pre-copy session announces initial data (initial_bytes > 0) and a dirty_bytes below 1 TiB.",
            $"{VfioH}: struct vfio_precopy_info (\"initial_bytes ... should have a non-zero value\"; \"dirty_bytes ... starts at zero\")",
            c =>
            {
                From(c, RUNNING);
                var fd = c.Reach(c.Device, PRE_COPY, "RUNNING -> PRE_COPY starts a pre-copy session");
                if (fd is null) Fail("RUNNING -> PRE_COPY to return a data fd", "returned data_fd -1");
                var (rc, initial, dirty) = c.PrecopyInfo(fd!);
                Expect(rc == 0, "PRECOPY_INFO to answer in PRE_COPY", $"answered {Answer(rc)}");
                Expect(initial > 0, "initial_bytes > 0 at the start of the session", "reported 0");
                Expect(dirty < 1UL << 40, "dirty_bytes below 1 TiB", $"reported {dirty}");
            }, PreCopyOnly);

        yield return new DeviceCheck("resuming.restores-state", "Resuming", CheckSeverity.Must,
            "A stream written in RESUMING is loaded by RESUMING -> STOP, and a save of the restored device gives the same bytes.",
            $"{VfioH}: \"RESUMING -> STOP ... the device ... loads the data\"; the data_fd of STOP -> RESUMING",
            c =>
            {
                var stream = Saved(c);
                int rc = c.Restore(c.Target, stream);
                Expect(rc == 0, $"RESUMING -> STOP to load the {stream.Length}-byte stream {c.Device.Name} saved", $"answered {Answer(rc)}");
                var again = c.SaveStopCopy(c.Target);
                ExpectSame(stream, again, $"the save of {c.Target.Name} after the restore");
            }, V2Only);

        yield return new DeviceCheck("resuming.truncated-refused", "Resuming", CheckSeverity.Must,
            "A stream cut short is refused: the arc out of RESUMING fails, the device is then in RESUMING or ERROR, and VFIO_DEVICE_RESET brings it back to RUNNING.",
            $"{VfioH}: \"RESUMING -> STOP ... if ... the data is incomplete ... the ioctl fails\"; \"VFIO_DEVICE_RESET ... returns the device to RUNNING\"",
            c =>
            {
                var stream = Saved(c);
                RefusedStream(c, stream.AsSpan(0, stream.Length / 2).ToArray(), "cut to half its length");
            }, V2Only);

        yield return new DeviceCheck("resuming.corrupt-refused", "Resuming", CheckSeverity.Should,
            "A stream whose first 8 bytes are inverted is refused (a driver that loads whatever it is given loads garbage into the hardware).",
            $"{VfioH}: \"RESUMING -> STOP ... if the data is ... invalid ... the ioctl fails\"",
            c =>
            {
                var stream = Saved(c);
                for (int i = 0; i < Math.Min(8, stream.Length); i++) stream[i] = (byte)~stream[i];
                RefusedStream(c, stream, "with its first 8 bytes inverted");
            }, V2Only);

        yield return new DeviceCheck("resuming.oversized-refused", "Resuming", CheckSeverity.Should,
            "A stream with 4 KiB of junk after its end is refused, by write() or by the arc out of RESUMING.",
            $"{VfioH}: \"RESUMING -> STOP ... if the data is ... invalid ... the ioctl fails\"",
            c =>
            {
                var stream = Saved(c);
                var longer = new byte[stream.Length + 4096];
                stream.CopyTo(longer, 0);
                new Random(1).NextBytes(longer.AsSpan(stream.Length));
                RefusedStream(c, longer, "with 4 KiB after its end");
            }, V2Only);

        yield return new DeviceCheck("resuming.foreign-refused", "Resuming", CheckSeverity.Should,
            "A stream saved by a device of another kind (-Peer of another model) is refused.",
            $"{VfioH}: \"RESUMING -> STOP ... if the data is ... invalid ... the ioctl fails\"",
            c =>
            {
                if (c.Peer is null || c.Peer.Identity.Model == c.Device.Identity.Model) Skip("needs -Peer of another device model");
                From(c, STOP);
                var foreign = c.SaveStopCopy(c.Peer!);
                c.Reach(c.Peer!, RUNNING, "the peer runs again");
                RefusedStream(c, foreign, $"saved by {c.Peer!.Name} ({c.Peer.Identity.Model})", into: c.Device);
            }, V2Only);

        yield return new DeviceCheck("p2p.states", "P2P", CheckSeverity.Must,
            "A device that claims P2P reaches RUNNING_P2P (and PRE_COPY_P2P when it claims PRE_COPY); one that does not answers EINVAL for them.",
            $"{VfioH}: VFIO_MIGRATION_P2P (\"... RUNNING_P2P ... PRE_COPY_P2P\"); vfio_main.c state_flags_table",
            c =>
            {
                From(c, RUNNING);
                if (!c.Claims(VFIO_MIGRATION_P2P))
                {
                    int rc = c.SetState(c.Device, RUNNING_P2P, out _);
                    Expect(rc == -Errno.EINVAL, "RUNNING_P2P to be refused with EINVAL (P2P not claimed)", $"answered {Answer(rc)}");
                    return;
                }
                c.Reach(c.Device, RUNNING_P2P, "P2P is claimed");
                if (c.Claims(VFIO_MIGRATION_PRE_COPY)) c.Reach(c.Device, PRE_COPY_P2P, "P2P and PRE_COPY are claimed");
            }, V2Only);
    }

    /// <summary>A stop-copy save of the device, left in STOP (or RUNNING with a peer, which the restore goes into).</summary>
    private static byte[] Saved(DeviceCheckContext c)
    {
        From(c, STOP);
        var stream = c.SaveStopCopy(c.Device);
        Expect(stream.Length > 0, "a stop-copy stream of at least one byte", "gave an empty stream");
        if (c.Peer is not null) c.Reach(c.Device, RUNNING, "the device runs while its peer is restored");
        return stream;
    }

    /// <summary>
    /// Restores a bad stream into the device under test (the peer only receives good streams): it must be
    /// refused, by write() or by RESUMING -> STOP. A refused arc leaves the
    /// device in RESUMING or ERROR (the contract's "original state ... or ERROR"); a write() that refused the
    /// junk may be followed by an arc that loads what was valid. Then a reset must bring RUNNING back.
    /// </summary>
    private static void RefusedStream(DeviceCheckContext c, byte[] stream, string what, Vfio.VfioDevice? into = null)
    {
        var target = into ?? c.Device;
        var (written, loaded) = c.RestoreSteps(target, stream);
        Expect(written < 0 || loaded < 0, $"the stream {what} to be refused (write() or RESUMING -> STOP failing)", "took it: write() and RESUMING -> STOP answered 0");
        uint now = c.GetState(target);
        if (loaded < 0)
            Expect(now is RESUMING or ERROR, $"the device in RESUMING or ERROR after RESUMING -> STOP failed ({Answer(loaded)})", $"is in {StateName(now)}");
        int reset = c.Reset(target);
        if (reset is -Errno.ENOTTY or -Errno.EINVAL) return;   // no reset: the suite's cleanup says what became of it
        Expect(reset == 0, "VFIO_DEVICE_RESET to answer 0 after a refused load", $"answered {Answer(reset)}");
        now = c.GetState(target);
        Expect(now == RUNNING, "RUNNING after VFIO_DEVICE_RESET", $"is in {StateName(now)}");
    }

    private static void ExpectSame(byte[] a, byte[] b, string what)
    {
        if (a.AsSpan().SequenceEqual(b)) return;
        int at = 0;
        while (at < Math.Min(a.Length, b.Length) && a[at] == b[at]) at++;
        Fail($"{what} to give the same {a.Length} bytes", $"gave {b.Length} bytes that differ from byte {at} on");
    }
}
