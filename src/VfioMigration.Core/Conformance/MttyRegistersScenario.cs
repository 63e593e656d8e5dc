using System;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Conformance.DeviceScenarioCalls;
using static VfioMigration.Core.Conformance.MttyScenarioCalls;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// mtty's device model as migration sees it, between two mtty-2 mdevs: UART registers and FIFO written
/// through the I/O BARs (pwrite on the device fd, as a guest's port I/O arrives), read back, saved, restored
/// into the second mdev and read there; the whole stream is recorded, not only its header. Then the streams
/// mtty.c refuses (magic, version, nr_ports, flags; too long; too short) and what the driver does with them.
/// Both devices are given back their first state at the end.
/// </summary>
public sealed class MttyRegistersScenario : ConformanceScenario
{
    private const long Bar1 = 1L << 40;   // region index << VFIO_PCI_OFFSET_SHIFT
    private const long Rom = 6L << 40;

    // (BAR offset, register, value, what it does): divisor 0x000c, 8N1, FIFO on and cleared, IER RDI|RLSI,
    // MCR DTR|RTS|OUT2, scratch 0x5a, "hi" looped back into port 0's FIFO; port 1 with its FIFO off, so a
    // second byte overruns it.
    private static readonly (long Bar, int Register, byte Value, string What)[] s_program =
    {
        (0, 3, 0x83, "LCR DLAB"), (0, 0, 0x0c, "DLL"), (0, 1, 0x00, "DLM"), (0, 3, 0x03, "LCR 8N1"),
        (0, 2, 0xc7, "FCR"), (0, 1, 0x05, "IER"), (0, 4, 0x0b, "MCR"), (0, 7, 0x5a, "SCR"),
        (0, 0, 0x68, "TX"), (0, 0, 0x69, "TX"),
        (Bar1, 2, 0x00, "FCR"), (Bar1, 1, 0x0f, "IER"), (Bar1, 0, 0x41, "TX"), (Bar1, 0, 0x42, "TX"),
    };

    public override string Name => "mtty-registers";

    public override bool AppliesTo(ConformanceTarget target) =>
        target.MdevGroup is not null && target.MdevDevice is not null && target.PeerMdevGroup is not null && target.PeerMdevDevice is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        using var source = OpenDevice(host, target.MdevGroup!.Value, target.MdevDevice!, r);
        using var peer = OpenDevice(host, target.PeerMdevGroup!.Value, target.PeerMdevDevice!, r);
        if (source.Device is { } s && peer.Device is { } p) Run(host, s, p, r);
    }

    private static void Run(VfioHost host, SafeFd source, SafeFd peer, ConformanceRecorder r)
    {
        var first = SaveStopped(host, source, r, "source as found");
        var peerFirst = SaveStopped(host, peer, r, "peer as found");
        if (first is null || peerFirst is null) return;

        foreach (var (bar, register, value, what) in s_program)
            r.Result($"pwrite BAR{bar >> 40}+{register} {what} 0x{value:x2}", host.TryPwrite(source, new[] { value }, bar + register));
        // mtty_write cuts an 8-byte write into two 4-byte pieces: TX gets byte 0, MCR (offset 4) byte 4.
        r.Result("pwrite BAR1+0 8 bytes", host.TryPwrite(source, new byte[] { 0x43, 0xee, 0xee, 0xee, 0x03, 0xee, 0xee, 0xee }, Bar1));
        r.Result("pwrite ROM region", host.TryPwrite(source, new byte[] { 1 }, Rom));
        ReadRegisters(host, source, r, "source");

        var saved = SaveStopped(host, source, r, "source programmed");
        if (saved is null) return;

        if (Restore(host, peer, r, "peer restore", saved))
        {
            using (Set(host, peer, r, "peer restore", VfioMigrationState.Running)) { }
            var again = SaveStopped(host, peer, r, "peer restored");
            r.Record("peer's stream equals the source's", again is not null && again.AsSpan().SequenceEqual(saved) ? "yes" : "no");
            ReadRegisters(host, peer, r, "peer");
            // Receiving takes from the FIFO: "h", "i", then nothing (mtty leaves the byte unset: not recorded).
            var rx = new byte[1];
            for (int i = 0; i < 2; i++)
            {
                long n = host.TryPread(peer, rx, 0);
                r.Record($"peer: pread BAR0+0 RX #{i + 1}", n == 1 ? $"0x{rx[0]:x2}" : ConformanceRecorder.Answer(n));
            }
            ReadRegister(host, peer, r, "peer after RX", 0, 5, "LSR");
        }

        Refusals(host, peer, r, saved);

        Restore(host, source, r, "source given back", first);
        using (Set(host, source, r, "source given back", VfioMigrationState.Running)) { }
        Restore(host, peer, r, "peer given back", peerFirst);
        using (Set(host, peer, r, "peer given back", VfioMigrationState.Running)) { }
    }

    /// <summary>
    /// Streams mtty_resume_write refuses: the write that completes a header mtty.c does not accept answers
    /// EFAULT (its bytes are still taken, so a load that follows succeeds); a write past the state's size is
    /// ENOMEM; a short stream fails the load (EINVAL) and the device stays in RESUMING until it gets the rest.
    /// </summary>
    private static void Refusals(VfioHost host, SafeFd peer, ConformanceRecorder r, byte[] good)
    {
        foreach (var (offset, value, what) in new (int, byte, string)[] { (0, (byte)(good[0] ^ 0xff), "bad magic"), (8, 2, "major version 2"), (16, 1, "nr_ports 1"), (20, 1, "flags 1") })
        {
            var bad = (byte[])good.Clone();
            bad[offset] = value;
            Restore(host, peer, r, what, bad);
        }
        var nrPorts1 = (byte[])good.Clone();
        nrPorts1[16] = 1;
        Restore(host, peer, r, "header in two writes", nrPorts1[..20], nrPorts1[20..30], nrPorts1[30..]);
        Restore(host, peer, r, "one byte too many", good.Concat(new byte[] { 0 }).ToArray(), good);

        // Too short: the load fails and the device waits in RESUMING on the same data fd for the rest.
        using (Set(host, peer, r, "too short", VfioMigrationState.Stop, record: false)) { }
        using var data = Set(host, peer, r, "too short", VfioMigrationState.Resuming, record: false);
        if (data is null) return;
        int half = good.Length / 2;
        r.Record($"too short: write {half.ToString(CultureInfo.InvariantCulture)} bytes", ConformanceRecorder.Answer(host.TryWrite(data, good.AsSpan(0, half))));
        using (Set(host, peer, r, "too short", VfioMigrationState.Stop)) { }
        r.Record("too short: state after the load", State(host, peer));
        r.Record("too short: write the rest", ConformanceRecorder.Answer(host.TryWrite(data, good.AsSpan(half))));
        using (Set(host, peer, r, "too short, completed", VfioMigrationState.Stop)) { }
        r.Record("too short, completed: state after the load", State(host, peer));
    }

    /// <summary>The registers a read does not change (IER, IIR, LCR, MCR, LSR, MSR, SCR) of both ports, one byte each.</summary>
    private static void ReadRegisters(VfioHost host, SafeFd device, ConformanceRecorder r, string label)
    {
        string[] names = { "RX", "IER", "IIR", "LCR", "MCR", "LSR", "MSR", "SCR" };
        foreach (long bar in new[] { 0L, Bar1 })
            for (int register = 1; register < 8; register++)
                ReadRegister(host, device, r, label, bar, register, names[register]);
    }

    private static void ReadRegister(VfioHost host, SafeFd device, ConformanceRecorder r, string label, long bar, int register, string name)
    {
        var b = new byte[1];
        long n = host.TryPread(device, b, bar + register);
        r.Record($"{label}: pread BAR{bar >> 40}+{register} {name}", n == 1 ? $"0x{b[0]:x2}" : ConformanceRecorder.Answer(n));
    }
}
