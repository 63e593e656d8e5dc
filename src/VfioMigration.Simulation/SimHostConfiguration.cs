using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation.Devices;
using VfioMigration.Core.Simulation.Iommufd;

namespace VfioMigration.Core.Simulation;

/// <summary>How a simulated device reaches guest memory.</summary>
public enum SimBus
{
    /// <summary>A PCI function behind the IOMMU (vfio-pci): the kernel cannot see its DMA, so every mapped page reads dirty.</summary>
    Pci,

    /// <summary>A mediated device without an IOMMU of its own: it pins guest pages, and only pinned pages read dirty.</summary>
    Mdev,
}

/// <summary>Which IOMMU the simulated host has (what the iommufd backend's driver rules follow).</summary>
public enum SimIommuModel
{
    /// <summary>Intel VT-d (drivers/iommu/intel): capability and extended capability registers.</summary>
    IntelVtd,

    /// <summary>AMD-Vi (drivers/iommu/amd): the extended feature register.</summary>
    AmdVi,
}

/// <summary>Which migration interface a simulated device offers.</summary>
public enum SimMigrationProtocol
{
    /// <summary>No migration driver: VFIO_DEVICE_FEATURE MIGRATION answers ENOTTY.</summary>
    None,

    /// <summary>The 5.8 series' migration region (type 3 / subtype 1) with device_state bits.</summary>
    V1,

    /// <summary>Today's state machine through VFIO_DEVICE_FEATURE (MIG_DEVICE_STATE, data fds).</summary>
    V2,
}

/// <summary>
/// How a simulated device behaves over (simulated) time. Deterministic: the same seed and the same clock
/// give the same dirty pages and the same state bytes.
/// </summary>
public sealed class SimWorkload
{
    /// <summary>Bytes of device state the stop-and-copy phase transfers (MIG_DATA_SIZE, v1 pending_bytes once stopped).</summary>
    public long StateSize { get; set; } = 96;

    /// <summary>Bytes the device offers in pre-copy before any state changes (PRECOPY_INFO initial_bytes).</summary>
    public long InitialBytes { get; set; } = 24;

    /// <summary>How fast the running device changes its own state, in bytes per simulated second (PRECOPY_INFO dirty_bytes grows by it).</summary>
    public double StateDirtyBytesPerSecond { get; set; }

    /// <summary>How fast the running device dirties guest pages, in pages per simulated second (by pinning for mdev, by DMA logging for v2 devices that log).</summary>
    public double GuestDirtyPagesPerSecond { get; set; }

    /// <summary>Seed of the device's pseudo-random choices (which pages, which state bytes).</summary>
    public int Seed { get; set; } = 1;

    public SimWorkload Clone() => (SimWorkload)MemberwiseClone();
}

/// <summary>One simulated device.</summary>
public sealed class SimDeviceConfig
{
    /// <summary>PCI address (0000:3b:00.0) or mdev UUID.</summary>
    public string Name { get; set; } = "";

    public SimBus Bus { get; set; } = SimBus.Pci;

    public int VendorId { get; set; } = 0x1234;

    public int DeviceId { get; set; } = 0x11e8;

    /// <summary>The bound driver; a device bound to a non-VFIO driver makes its group not viable.</summary>
    public string Driver { get; set; } = "vfio-pci";

    /// <summary>For an mdev, its type (mtty-2).</summary>
    public string? MdevType { get; set; }

    public SimMigrationProtocol Migration { get; set; } = SimMigrationProtocol.None;

    /// <summary>v2: VFIO_MIGRATION_STOP_COPY | P2P | PRE_COPY bits the device advertises.</summary>
    public ulong MigrationFlags { get; set; } = VfioConstants.VFIO_MIGRATION_STOP_COPY;

    /// <summary>v2: the device implements DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*).</summary>
    public bool DmaLogging { get; set; }

    /// <summary>The device supports VFIO_DEVICE_RESET (VFIO_DEVICE_FLAGS_RESET).</summary>
    public bool Reset { get; set; } = true;

    public SimWorkload Workload { get; set; } = new();

    /// <summary>
    /// Bugs the device's migration driver has for good (empty: a clean driver). Each needs the capability it
    /// corrupts (<see cref="SimHostConfiguration.Validate"/> says which); docs/simulated-host.md lists them.
    /// </summary>
    public HashSet<SimDefect> Defects { get; set; } = new();

    /// <summary>
    /// For the kernel's mtty sample (an mdev bound to driver mtty, type mtty-1 or mtty-2): its number of
    /// serial ports; null for any other device. An mtty is simulated as mtty.c's device model, not by a workload.
    /// </summary>
    public int? MttyPorts => Bus == SimBus.Mdev && string.Equals(Driver, "mtty", StringComparison.Ordinal)
        ? MdevType switch { "mtty-1" => 1, "mtty-2" => 2, _ => null }
        : null;

    /// <summary>True if the bound driver is a VFIO driver: vfio-pci, a variant such as mlx5_vfio_pci, or an mdev vendor driver.</summary>
    public bool BoundToVfio => Bus == SimBus.Mdev || Driver.Contains("vfio", StringComparison.Ordinal);
}

/// <summary>A process that holds a group open (so opening it here answers EBUSY), as /proc shows it.</summary>
public sealed class SimHolder
{
    public int Pid { get; set; }

    public string Command { get; set; } = "qemu-system-x86_64";
}

/// <summary>One simulated IOMMU group.</summary>
public sealed class SimGroupConfig
{
    public int Number { get; set; }

    public List<SimDeviceConfig> Devices { get; set; } = new();

    /// <summary>Another process holding /dev/vfio/N, or null.</summary>
    public SimHolder? HeldBy { get; set; }

    /// <summary>
    /// The group sits behind an IOMMU unit of its own that can (or cannot) track dirty pages, unlike the host's
    /// (a second DMAR unit): its registers are the default ones of that kind. Null: the host's IOMMU.
    /// </summary>
    public bool? IommuDirtyTracking { get; set; }
}

/// <summary>
/// The topology of a simulated host: its IOMMU groups and devices, and the IOMMU's properties.
/// Read from a .psd1 file (<see cref="FromDictionary"/>) or built in code.
/// </summary>
public sealed class SimHostConfiguration
{
    /// <summary>Name shown as the host's description.</summary>
    public string Name { get; set; } = "simulated host";

    public List<SimGroupConfig> Groups { get; set; } = new();

    /// <summary>Page sizes of the IOMMU (iova_pgsizes with an IOMMU-backed group): 4K|2M|1G as VT-d.</summary>
    public ulong IommuPageSizes { get; set; } = 0x40201000;

    /// <summary>Usable IOVA ranges (inclusive ends): a 39-bit VT-d with the MSI window cut out, as the lab's.</summary>
    public List<(ulong Start, ulong End)> IovaRanges { get; set; } = new() { (0x0, 0xfedfffff), (0xfef00000, 0x7fffffffff) };

    /// <summary>The type1 module's dma_entry_limit.</summary>
    public uint DmaEntryLimit { get; set; } = VfioConstants.DMA_ENTRY_LIMIT;

    /// <summary>
    /// The host kernel is built with CONFIG_IOMMUFD_DRIVER, which holds the iova_bitmap code a device DMA log
    /// report needs. Without it (Debian's 6.12 kernels), VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT answers
    /// EOPNOTSUPP once its arguments are checked, while START and STOP work (kernel-interface.md b.4).
    /// </summary>
    public bool IommufdDriver { get; set; } = true;

    /// <summary>
    /// The kernel has iommufd and the vfio device cdev (CONFIG_IOMMUFD, CONFIG_VFIO_DEVICE_CDEV): /dev/iommu and
    /// /dev/vfio/devices/vfioN exist beside the legacy container and groups. Off by default (Debian's 6.12).
    /// </summary>
    public bool Iommufd { get; set; }

    /// <summary>The IOMMU behind the PCI devices: VT-d (the default, as the lab's QEMU) or AMD-Vi.</summary>
    public SimIommuModel IommuModel { get; set; } = SimIommuModel.IntelVtd;

    /// <summary>
    /// Whether the IOMMU can track dirty pages (VT-d: scalable mode with SSADS and SMPWC; AMD: HDSup). It picks
    /// the default registers: QEMU's vIOMMU (which cannot) or a host IOMMU that can. Registers given with
    /// VtdCap/VtdEcap/AmdEfr win; giving both and disagreeing is an error. Null: not said (cannot).
    /// </summary>
    public bool? IommuDirtyTracking { get; set; }

    /// <summary>The VT-d capability register (IOMMU_GET_HW_INFO cap_reg), or null for the default.</summary>
    public ulong? VtdCap { get; set; }

    /// <summary>The VT-d extended capability register (ecap_reg), or null for the default.</summary>
    public ulong? VtdEcap { get; set; }

    /// <summary>The AMD-Vi extended feature register (EFR), or null for the default.</summary>
    public ulong? AmdEfr { get; set; }

    /// <summary>QEMU 7.2's intel-iommu as the lab measured it: legacy mode, ECAP 0xf00f4a (docs/iommufd.md).</summary>
    public const ulong QemuVtdEcap = 0xf00f4a;

    /// <summary>A VT-d capability register of QEMU's intel-iommu (39-bit address width, caching mode).</summary>
    public const ulong QemuVtdCap = 0x00d2008c22260286;

    /// <summary>A host VT-d that tracks dirty pages: QEMU 10's scalable-mode ECAP 0x480080f00f4a plus SSADS (bit 45) and SMPWC (bit 48).</summary>
    public const ulong DirtyVtdEcap = 0x480080f00f4a | (1UL << 45) | (1UL << 48);

    /// <summary>QEMU 10's amd-iommu as the lab measured it: EFR 0x29d3 (no HDSup).</summary>
    public const ulong QemuAmdEfr = 0x29d3;

    /// <summary>A host AMD-Vi that tracks dirty pages: QEMU's EFR plus HDSup (bit 52).</summary>
    public const ulong DirtyAmdEfr = QemuAmdEfr | (1UL << 52);

    /// <summary>The VT-d capability register the host reports.</summary>
    public ulong EffectiveVtdCap => VtdCap ?? QemuVtdCap;

    /// <summary>The VT-d extended capability register the host reports.</summary>
    public ulong EffectiveVtdEcap => VtdEcap ?? (IommuDirtyTracking == true ? DirtyVtdEcap : QemuVtdEcap);

    /// <summary>The AMD-Vi extended feature register the host reports.</summary>
    public ulong EffectiveAmdEfr => AmdEfr ?? (IommuDirtyTracking == true ? DirtyAmdEfr : QemuAmdEfr);

    /// <summary>Every device of every group.</summary>
    public IEnumerable<SimDeviceConfig> AllDevices => Groups.SelectMany(g => g.Devices);

    /// <summary>The number N of a device's cdev /dev/vfio/devices/vfioN (devices bound to VFIO, in order), or -1.</summary>
    public int CdevNumber(SimDeviceConfig device)
    {
        int n = 0;
        foreach (var d in AllDevices)
        {
            if (!d.BoundToVfio) continue;
            if (ReferenceEquals(d, device)) return n;
            n++;
        }
        return -1;
    }

    private static long SimMttyPortsSize(int ports) => Devices.SimMttyPorts.HeaderSize + ports * Devices.SimMttyPorts.PortSize;

    /// <summary>Checks the topology for mistakes a person makes in a configuration file.</summary>
    public void Validate()
    {
        if (IommuDirtyTracking is bool wanted)
        {
            bool regs = IommuModel == SimIommuModel.IntelVtd ? VtdEcap is not null : AmdEfr is not null;
            if (regs && SimIommuHardware.From(this).DirtyTracking != wanted)
                throw new FormatException($"IommuDirtyTracking = ${wanted.ToString().ToLowerInvariant()} disagrees with the registers given ({(IommuModel == SimIommuModel.IntelVtd ? $"VtdEcap 0x{VtdEcap:x}" : $"AmdEfr 0x{AmdEfr:x}")}); leave one of them out.");
        }
        var groups = new HashSet<int>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var g in Groups)
        {
            if (g.Number < 0) throw new FormatException($"Group number {g.Number} is negative.");
            if (!groups.Add(g.Number)) throw new FormatException($"Group {g.Number} is defined twice.");
            if (g.Devices.Count == 0) throw new FormatException($"Group {g.Number} has no devices.");
            foreach (var d in g.Devices)
            {
                if (string.IsNullOrWhiteSpace(d.Name)) throw new FormatException($"A device of group {g.Number} has no Name.");
                if (!names.Add(d.Name)) throw new FormatException($"Device '{d.Name}' is defined twice.");
                if (d.Bus == SimBus.Pci && !Kernel.VfioHost.IsPciAddress(d.Name))
                    throw new FormatException($"Device '{d.Name}' is on the pci bus but its name is not a PCI address such as 0000:3b:00.0.");
                if (d.Bus == SimBus.Mdev && !Guid.TryParse(d.Name, out _))
                    throw new FormatException($"Device '{d.Name}' is an mdev but its name is not a UUID.");
                if (d.Migration == SimMigrationProtocol.V2 && (d.MigrationFlags & VfioConstants.VFIO_MIGRATION_STOP_COPY) == 0)
                    throw new FormatException($"Device '{d.Name}': a v2 migration device must support STOP_COPY.");
                if (d.Workload.StateSize < 0 || d.Workload.InitialBytes < 0)
                    throw new FormatException($"Device '{d.Name}': state sizes cannot be negative.");
                if (d.Bus == SimBus.Mdev && string.Equals(d.Driver, "mtty", StringComparison.Ordinal))
                {
                    // mtty is simulated as mtty.c's device model: its state is fixed by its type.
                    if (d.MttyPorts is not int ports)
                        throw new FormatException($"Device '{d.Name}': an mdev bound to mtty has MdevType mtty-1 or mtty-2, not '{d.MdevType}'.");
                    long size = SimMttyPortsSize(ports);
                    var w = d.Workload;
                    if ((w.StateSize != size && w.StateSize != new SimWorkload().StateSize) || (w.InitialBytes != 24 && w.InitialBytes != new SimWorkload().InitialBytes) || w.StateDirtyBytesPerSecond != 0)
                        throw new FormatException($"Device '{d.Name}': an mtty's state is its serial ports ({size} bytes, 24 of them in pre-copy) and changes only through its BARs; leave StateSize, InitialBytes and StateDirtyBytesPerSecond out, or use another driver name for a device with a workload.");
                }
                foreach (var defect in d.Defects)
                    if (MissingCapability(d, defect) is string lack)
                        throw new FormatException($"Device '{d.Name}': the defect {defect} needs {lack}, which the device does not have.");
            }
        }
    }

    /// <summary>
    /// What <paramref name="defect"/> corrupts that <paramref name="d"/> lacks, as a phrase, or null when the
    /// device can have it: a defect of a capability the device does not offer could never show, and a
    /// conformance run against it would prove nothing.
    /// </summary>
    private static string? MissingCapability(SimDeviceConfig d, SimDefect defect)
    {
        bool v1 = d.Migration == SimMigrationProtocol.V1, v2 = d.Migration == SimMigrationProtocol.V2;
        bool preCopy = (d.MigrationFlags & VfioConstants.VFIO_MIGRATION_PRE_COPY) != 0;
        // An mtty's sizes are its type's, whatever its workload says.
        long stateSize = d.MttyPorts is int ports ? SimMttyPortsSize(ports) : d.Workload.StateSize;
        long initialBytes = d.MttyPorts is not null ? Devices.SimMttyPorts.HeaderSize : d.Workload.InitialBytes;
        switch (defect)
        {
            case SimDefect.V1PendingNeverZero or SimDefect.V1InvalidStateAccepted:
                return v1 ? null : "the v1 migration region (Migration = 'V1')";
            case SimDefect.DmaLogReportBeforeStart:
                return d.DmaLogging ? null : "DMA logging (DmaLogging = $true)";
        }
        if (!v2) return "v2 migration (Migration = 'V2')";
        switch (defect)
        {
            case SimDefect.PrecopyInitialBytesGrow or SimDefect.PrecopyInfoOutsidePrecopy:
                return preCopy ? null : "pre-copy (PRE_COPY in MigrationFlags)";
            case SimDefect.P2PClaimedButRefused:
                return (d.MigrationFlags & VfioConstants.VFIO_MIGRATION_P2P) != 0 ? null : "the P2P states (P2P in MigrationFlags)";
            case SimDefect.StateLostOnStopToRunning:
                // The 24-byte header is fixed by the device's kind: only the state after it can be lost.
                return stateSize > SimStateImage.HeaderSize ? null : $"state past its {SimStateImage.HeaderSize}-byte header to lose (StateSize above {SimStateImage.HeaderSize})";
            case SimDefect.SaveNotRepeatable:
            {
                // The counter takes the last 8 bytes of the stop-copy tail: they must be past the header (which
                // RESUMING checks) and past the pre-copy data (which is not in the tail).
                long floor = Math.Max(SimStateImage.HeaderSize, preCopy ? Math.Min(initialBytes, stateSize) : 0) + SaveCounterBytes;
                return stateSize >= floor ? null : $"{SaveCounterBytes} bytes of state past its header and its pre-copy initial data for the counter (StateSize of {floor} or more)";
            }
            default:
                return null;
        }
    }

    /// <summary>The counter a <see cref="SimDefect.SaveNotRepeatable"/> device writes at the end of each stop-copy stream.</summary>
    internal const int SaveCounterBytes = 8;

    /// <summary>
    /// Reads a configuration from the hashtable of a .psd1 file (keys case-insensitive; unknown keys are
    /// errors, so a misspelt key is not silently ignored).
    /// </summary>
    public static SimHostConfiguration FromDictionary(IDictionary data)
    {
        var c = new SimHostConfiguration();
        foreach (DictionaryEntry e in data)
        {
            string key = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
            switch (key.ToLowerInvariant())
            {
                case "name": c.Name = Str(e.Value, key); break;
                case "iommupagesizes": c.IommuPageSizes = U64(e.Value, key); break;
                case "dmaentrylimit": c.DmaEntryLimit = checked((uint)U64(e.Value, key)); break;
                case "iommufddriver": c.IommufdDriver = Bool(e.Value, key); break;
                case "iommufd": c.Iommufd = Bool(e.Value, key); break;
                case "iommumodel": c.IommuModel = Enum<SimIommuModel>(e.Value, key); break;
                case "iommudirtytracking": c.IommuDirtyTracking = Bool(e.Value, key); break;
                case "vtdcap": c.VtdCap = U64(e.Value, key); break;
                case "vtdecap": c.VtdEcap = U64(e.Value, key); break;
                case "amdefr": c.AmdEfr = U64(e.Value, key); break;
                case "iovaranges":
                    c.IovaRanges = List(e.Value, key).Select(r =>
                    {
                        var d = Dict(r, key);
                        return (U64(Get(d, "Start", key), "Start"), U64(Get(d, "End", key), "End"));
                    }).ToList();
                    break;
                case "groups": c.Groups = List(e.Value, key).Select(g => Group(Dict(g, key))).ToList(); break;
                default: throw new FormatException($"Unknown key '{key}' in the simulated host configuration (known: Name, Groups, IommuPageSizes, IovaRanges, DmaEntryLimit, IommufdDriver, Iommufd, IommuModel, IommuDirtyTracking, VtdCap, VtdEcap, AmdEfr).");
            }
        }
        c.Validate();
        return c;
    }

    private static SimGroupConfig Group(IDictionary d)
    {
        var g = new SimGroupConfig();
        foreach (DictionaryEntry e in d)
        {
            string key = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
            switch (key.ToLowerInvariant())
            {
                case "group": case "number": g.Number = checked((int)U64(e.Value, key)); break;
                case "devices": g.Devices = List(e.Value, key).Select(x => Device(Dict(x, key))).ToList(); break;
                case "iommudirtytracking": g.IommuDirtyTracking = Bool(e.Value, key); break;
                case "heldby":
                    var h = Dict(e.Value, key);
                    g.HeldBy = new SimHolder { Pid = checked((int)U64(Get(h, "Pid", key), "Pid")), Command = h.Contains("Command") ? Str(h["Command"], "Command") : "qemu-system-x86_64" };
                    break;
                default: throw new FormatException($"Unknown key '{key}' in a group (known: Group, Devices, HeldBy, IommuDirtyTracking).");
            }
        }
        return g;
    }

    private static SimDeviceConfig Device(IDictionary d)
    {
        var x = new SimDeviceConfig();
        bool driverGiven = false;
        object? defects = null;
        foreach (DictionaryEntry e in d)
        {
            string key = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
            switch (key.ToLowerInvariant())
            {
                case "name": x.Name = Str(e.Value, key); break;
                case "bus": x.Bus = Enum<SimBus>(e.Value, key); break;
                case "vendorid": x.VendorId = checked((int)U64(e.Value, key)); break;
                case "deviceid": x.DeviceId = checked((int)U64(e.Value, key)); break;
                case "driver": x.Driver = Str(e.Value, key); driverGiven = true; break;
                case "mdevtype": x.MdevType = Str(e.Value, key); break;
                case "migration": x.Migration = Enum<SimMigrationProtocol>(e.Value, key); break;
                case "migrationflags": x.MigrationFlags = MigrationFlags(e.Value, key); break;
                case "dmalogging": x.DmaLogging = Bool(e.Value, key); break;
                case "reset": x.Reset = Bool(e.Value, key); break;
                case "workload": x.Workload = Workload(Dict(e.Value, key)); break;
                case "defects": defects = e.Value ?? Array.Empty<object>(); break;
                default: throw new FormatException($"Unknown key '{key}' in a device (known: Name, Bus, VendorId, DeviceId, Driver, MdevType, Migration, MigrationFlags, DmaLogging, Reset, Workload, Defects).");
            }
        }
        if (!driverGiven && x.Bus == SimBus.Mdev) x.Driver = x.MdevType?.Split('-')[0] ?? "mdev";
        // After the loop: a hashtable's keys come in no particular order, and the error names the device.
        if (defects is not null) x.Defects = Defects(defects, x.Name);
        return x;
    }

    /// <summary>Defect names, case-insensitive: a list of strings, or one string of names separated by commas or spaces.</summary>
    private static HashSet<SimDefect> Defects(object value, string device)
    {
        var set = new HashSet<SimDefect>();
        foreach (string name in Names(value, "Defects"))
        {
            if (!System.Enum.TryParse<SimDefect>(name, ignoreCase: true, out var defect) || !System.Enum.IsDefined(defect) || !IsName(name))
                throw new FormatException($"Device '{device}': '{name}' in Defects is not a defect the simulator knows (known: {string.Join(", ", System.Enum.GetNames<SimDefect>())}).");
            set.Add(defect);
        }
        return set;
    }

    /// <summary>Enum.TryParse also takes numbers ("3") and flag lists ("A, B"); a configuration names each one.</summary>
    private static bool IsName(string s) => s.Length > 0 && char.IsLetter(s[0]) && s.All(char.IsLetterOrDigit);

    /// <summary>The names in a list of strings, or in one string separated by commas, bars or spaces.</summary>
    private static IEnumerable<string> Names(object? value, string key) => value switch
    {
        string s => s.Split(new[] { ',', '|', ' ' }, StringSplitOptions.RemoveEmptyEntries).Select(p => p.Trim()),
        IEnumerable e => e.Cast<object?>().Select(o => (o as string ?? throw new FormatException($"'{key}' must hold names (strings).")).Trim()),
        _ => throw new FormatException($"'{key}' must be a name or a list of names (@( ... ))."),
    };

    private static SimWorkload Workload(IDictionary d)
    {
        var w = new SimWorkload();
        foreach (DictionaryEntry e in d)
        {
            string key = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
            switch (key.ToLowerInvariant())
            {
                case "statesize": w.StateSize = checked((long)U64(e.Value, key)); break;
                case "initialbytes": w.InitialBytes = checked((long)U64(e.Value, key)); break;
                case "statedirtybytespersecond": w.StateDirtyBytesPerSecond = Dbl(e.Value, key); break;
                case "guestdirtypagespersecond": w.GuestDirtyPagesPerSecond = Dbl(e.Value, key); break;
                case "seed": w.Seed = checked((int)U64(e.Value, key)); break;
                default: throw new FormatException($"Unknown key '{key}' in a workload (known: StateSize, InitialBytes, StateDirtyBytesPerSecond, GuestDirtyPagesPerSecond, Seed).");
            }
        }
        return w;
    }

    private static ulong MigrationFlags(object? value, string key)
    {
        if (value is IEnumerable)
        {
            ulong flags = 0;
            foreach (string part in Names(value, key))
            {
                flags |= part.ToUpperInvariant() switch
                {
                    "STOP_COPY" => VfioConstants.VFIO_MIGRATION_STOP_COPY,
                    "P2P" => VfioConstants.VFIO_MIGRATION_P2P,
                    "PRE_COPY" => VfioConstants.VFIO_MIGRATION_PRE_COPY,
                    _ => throw new FormatException($"'{part}' in {key} is not a migration flag (STOP_COPY, P2P, PRE_COPY)."),
                };
            }
            return flags;
        }
        return U64(value, key);
    }

    private static object? Get(IDictionary d, string name, string where)
    {
        foreach (DictionaryEntry e in d)
            if (string.Equals(Convert.ToString(e.Key, CultureInfo.InvariantCulture), name, StringComparison.OrdinalIgnoreCase)) return e.Value;
        throw new FormatException($"'{where}' entry lacks '{name}'.");
    }

    private static IDictionary Dict(object? value, string key) =>
        value as IDictionary ?? throw new FormatException($"'{key}' must hold hashtables (@{{ ... }}).");

    private static IEnumerable<object?> List(object? value, string key) => value switch
    {
        IDictionary d => new object?[] { d },
        IEnumerable e when value is not string => e.Cast<object?>(),
        _ => throw new FormatException($"'{key}' must be a list (@( ... )).")
    };

    private static string Str(object? value, string key) =>
        value as string ?? throw new FormatException($"'{key}' must be a string.");

    private static bool Bool(object? value, string key) => value switch
    {
        bool b => b,
        _ => throw new FormatException($"'{key}' must be $true or $false."),
    };

    private static T Enum<T>(object? value, string key) where T : struct, Enum =>
        System.Enum.TryParse<T>(Str(value, key), ignoreCase: true, out var v) && System.Enum.IsDefined(v)
            ? v
            : throw new FormatException($"'{key}' must be one of {string.Join(", ", System.Enum.GetNames<T>())}.");

    private static ulong U64(object? value, string key)
    {
        try
        {
            return value switch
            {
                string s when s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) => ulong.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                string s => ulong.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture),
                int or long or short or byte or uint or ulong or ushort => Convert.ToUInt64(value, CultureInfo.InvariantCulture),
                double d when d >= 0 && d == Math.Floor(d) => (ulong)d,
                _ => throw new FormatException(),
            };
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or InvalidCastException)
        {
            throw new FormatException($"'{key}' must be a non-negative whole number (decimal, 0x hex, or 2MB-style).");
        }
    }

    private static double Dbl(object? value, string key) => value switch
    {
        int or long or double or float or decimal => Convert.ToDouble(value, CultureInfo.InvariantCulture) is var d && d >= 0 ? d : throw new FormatException($"'{key}' cannot be negative."),
        _ => throw new FormatException($"'{key}' must be a number."),
    };
}
