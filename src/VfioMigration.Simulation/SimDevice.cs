using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation.Devices;

namespace VfioMigration.Core.Simulation;

/// <summary>What a saving data fd answers at the temporary end of pre-copy data (both are allowed by the UAPI).</summary>
public enum SimPreCopyEndOfData
{
    /// <summary>read() returns 0, as mtty does (kernel-interface.md lab 7.3: "read(pre-copy data_fd) -> 0 (EOF)").</summary>
    ReturnZero,

    /// <summary>read() fails with ENOMSG, as the UAPI describes it (include/uapi/linux/vfio.h, PRE_COPY).</summary>
    Enomsg,
}

/// <summary>
/// A simulated device: its configuration and its state, which live as long as the host (not only while a
/// descriptor is open). It answers the device ioctls as vfio-pci (drivers/vfio/pci/vfio_pci_core.c) does
/// for a PCI device and as the mtty sample (samples/vfio-mdev/mtty.c) does for an mdev, with the core's
/// checks of vfio_main.c in front; it has a v1 migration region (5.8 series) or a v2 state machine with
/// data fds, optionally DMA logging, and a deterministic workload driven by the host's clock.
/// </summary>
public sealed class SimDevice
{
    /// <summary>PCI devices of the lab that are conventional PCI, not PCI Express (QEMU's edu and pci-testdev).</summary>
    private static readonly HashSet<(int Vendor, int Device)> ConventionalPci = new() { (0x1234, 0x11e8), (0x1b36, 0x0005) };

    private readonly SimWorkloadModel _workload;
    private readonly HashSet<ulong> _pinnedPages = new();
    // Times SimDefect.StateLostOnStopToRunning replaced the state: each fresh state is derived from the next count.
    private ulong _reinitialisations;

    internal SimDevice(SimulatedKernel kernel, SimGroup group, SimDeviceConfig config)
    {
        Kernel = kernel;
        Group = group;
        Config = config;
        IsPciExpress = config.Bus == SimBus.Pci && !ConventionalPci.Contains((config.VendorId, config.DeviceId));
        Workload = config.Workload.Clone();
        if (config.MttyPorts is int ports)
        {
            // The mtty sample: its state is its serial ports, 24 bytes of header in pre-copy and the ports at
            // stop-copy (mtty_data_size); it changes only through its BARs.
            MttyPorts = new SimMttyPorts(ports);
            Workload.StateSize = MttyPorts.StateSize;
            Workload.InitialBytes = SimMttyPorts.HeaderSize;
            Workload.StateDirtyBytesPerSecond = 0;
            StateImage = new SimStateImage((uint)ports, MttyPorts.Saved);
        }
        else
        {
            StateImage = new SimStateImage(Workload.StateSize, Workload.Seed);
        }
        _workload = new SimWorkloadModel(Workload, kernel.Clock.Now);
        if (config.Migration == SimMigrationProtocol.V2) MigrationV2 = new SimMigrationV2(this, config.MigrationFlags);
        if (config.Migration == SimMigrationProtocol.V1) MigrationV1 = new SimMigrationV1Region(this);
        if (config.DmaLogging) DmaLog = new SimDmaLog();
        Regions = new SimDeviceRegions(this);
    }

    internal SimulatedKernel Kernel { get; }

    internal SimGroup Group { get; }

    public SimDeviceConfig Config { get; }

    public string Name => Config.Name;

    /// <summary>A PCI Express function (config space of 4096 bytes, an ERR interrupt); conventional PCI otherwise.</summary>
    public bool IsPciExpress { get; }

    /// <summary>What reading a saving data fd answers when pre-copy data is exhausted for now.</summary>
    public SimPreCopyEndOfData PreCopyEndOfData { get; set; } = SimPreCopyEndOfData.ReturnZero;

    /// <summary>
    /// DMA logging that accepts START/REPORT/STOP and logs nothing, exactly as mtty's mtty_log_* do.
    /// Off by default: a logging device tracks the pages its workload writes (as mlx5's tracker does).
    /// </summary>
    public bool DmaLogIsNoOp { get; set; }

    /// <summary>Descriptors of the device open now (VFIO_GROUP_GET_DEVICE_FD may be called more than once).</summary>
    public int OpenCount { get; private set; }

    /// <summary>The v2 state (enum vfio_device_mig_state), or null for a device without v2 migration.</summary>
    public uint? MigrationState => MigrationV2?.State;

    /// <summary>The v1 device_state register, or null for a device without the v1 region.</summary>
    public uint? DeviceStateV1 => MigrationV1?.Register;

    /// <summary>The device's state as its migration stream carries it (the "registers" a restore loads).</summary>
    public byte[] GetStateBytes() => StateImage.ToArray();

    /// <summary>The device's driver has <paramref name="defect"/> (its configuration's Defects).</summary>
    public bool Has(SimDefect defect) => Config.Defects.Contains(defect);

    /// <summary>Guest pages the device holds pinned in its container (mdev).</summary>
    public IReadOnlyCollection<ulong> PinnedPages => _pinnedPages;

    internal SimStateImage StateImage { get; }

    /// <summary>The workload the device runs: the configured one, with mtty's fixed state sizes for an mtty.</summary>
    internal SimWorkload Workload { get; }

    /// <summary>For an mtty mdev, its serial ports (the registers its BARs reach and its stream carries).</summary>
    internal SimMttyPorts? MttyPorts { get; }

    internal SimMigrationV2? MigrationV2 { get; }

    internal SimMigrationV1Region? MigrationV1 { get; }

    internal SimDmaLog? DmaLog { get; }

    internal SimDeviceRegions Regions { get; }

    /// <summary>mtty copies dev_info on GET_INFO and checks GET_IRQ_INFO's index against it (0 before).</summary>
    internal bool InfoQueried { get; set; }

    /// <summary>The device is a mediated device (its driver is modelled on mtty).</summary>
    internal bool IsMdev => Config.Bus == SimBus.Mdev;

    /// <summary>The v2 device is in PRE_COPY or PRE_COPY_P2P (VFIO_MIG_GET_PRECOPY_INFO is valid).</summary>
    internal bool IsInPreCopy => MigrationV2?.State is VfioConstants.VFIO_DEVICE_STATE_PRE_COPY or VfioConstants.VFIO_DEVICE_STATE_PRE_COPY_P2P;

    /// <summary>The device runs: its workload changes state and memory.</summary>
    internal bool IsRunning => OpenCount > 0 && (MigrationV2?.IsRunning ?? MigrationV1?.IsRunning ?? true);

    /// <summary>
    /// Brings the device's workload up to the host clock's now: state blocks change and guest pages are
    /// written for the running time since the last tick. The container calls it before computing dirty
    /// bitmaps; every call on the device's descriptors calls it first.
    /// </summary>
    internal void Tick()
    {
        var container = Group.Container;
        IReadOnlyList<(ulong Iova, ulong Size)> mapped = container is not null && IsMdev ? container.MappedRanges : Array.Empty<(ulong, ulong)>();
        if (container is not null) _pinnedPages.RemoveWhere(p => !mapped.Any(r => p >= r.Iova && p - r.Iova < r.Size));
        Action<ulong>? writeMapped = IsMdev && container is not null ? PinPage : null;
        // A PCI device attached to an iommufd HWPT writes guest pages through its IOMMU: the IOPTEs record them
        // (dirty bits, while tracking is enabled on a domain that can track).
        if (!IsMdev && IommufdBinding is Iommufd.SimIommufdDevice { Hwpt: { } hwpt })
        {
            mapped = hwpt.WriteableRanges;
            writeMapped = hwpt.DmaWrite;
        }
        var log = DmaLog is { Active: true } && !DmaLogIsNoOp ? DmaLog : null;
        _workload.Advance(Kernel.Clock.Now, IsRunning, StateImage,
            mapped, writeMapped,
            log?.Ranges ?? (IReadOnlyList<(ulong, ulong)>)Array.Empty<(ulong, ulong)>(), log is not null ? log.RecordWrite : null);
    }

    /// <summary>What the device is bound as in an iommufd context (its cdev's BIND_IOMMUFD), or null.</summary>
    internal Iommufd.SimIommufdObject? IommufdBinding { get; set; }

    /// <summary>VFIO_GROUP_GET_DEVICE_FD (or a cdev bind, <paramref name="cdev"/>): a new device file, or -errno.</summary>
    internal int Open(out SimFile? file, bool cdev = false)
    {
        Tick();
        if (OpenCount == 0)
        {
            // open_device: a migration driver starts the device RUNNING (mlx5vf_pci_open_device; the v1 doc:
            // "default state when the user opens the device is _RUNNING"). mtty keeps its state across opens.
            if (!IsMdev) MigrationV2?.Reset();
            MigrationV1?.Reset();
        }
        OpenCount++;
        file = new SimDeviceFile(Kernel, this, cdev);
        return 0;
    }

    /// <summary>The last close of a device descriptor (close_device): sessions end, tracking stops, pages are unpinned.</summary>
    internal void Closed()
    {
        Tick();
        if (--OpenCount > 0) return;
        MigrationV2?.EndSessions();
        MigrationV1?.EndSessions();
        DmaLog?.Stop();
        LowPower = false;
        if (Group.Container is { } container)
            foreach (ulong page in _pinnedPages) container.UnpinPages(page, 1);
        _pinnedPages.Clear();
    }

    /// <summary>vfio-pci runtime low power was entered (VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY).</summary>
    internal bool LowPower { get; set; }

    /// <summary>VFIO_DEVICE_RESET: 0 or -errno.</summary>
    internal int Reset()
    {
        // vfio_pci_ioctl_reset: a function without a reset method answers EINVAL. mtty_reset always succeeds.
        if (!IsMdev && !Config.Reset) return -Errno.EINVAL;
        // A reset device is RUNNING again with its data fds ended (mtty_reset / mlx5's reset_done; v1: the
        // only way out of the error state).
        MigrationV2?.Reset();
        MigrationV1?.Reset();
        return 0;
    }

    /// <summary>
    /// SimDefect.StateLostOnStopToRunning: the driver re-initialises the hardware, and the device's state
    /// becomes a fresh one, derived from its seed and a count of re-initialisations so that a run is
    /// repeatable, and never the state it had (a save before and one after always differ). An mtty comes
    /// back as mtty_init_dev leaves it, with a fresh value in each port's scratch register.
    /// </summary>
    internal void ReinitialiseState()
    {
        // Comparing costs a copy of the state; past a megabyte, fresh random bytes equal to the old state
        // would take a collision of every 64-bit word, so the comparison is left out there.
        byte[]? before = StateImage.Size <= 1 << 20 ? GetStateBytes() : null;
        do
        {
            ulong fresh = SimRandom.Derive(Workload.Seed, purpose: 3, index: ++_reinitialisations);
            if (MttyPorts is { } ports) ports.Reinitialise(scratch: (byte)fresh);
            else StateImage.Reseed(unchecked((long)fresh));
        }
        while (before is not null && before.AsSpan().SequenceEqual(StateImage.ToArray()));
    }

    /// <summary>
    /// The device writes [<paramref name="iova"/>, +<paramref name="length"/>) of guest memory now, through the
    /// iommufd HWPT it is attached to: each 4 KiB page that is mapped writeable is written (its IOPTE's dirty
    /// bit is set while tracking is enabled), the rest faults in the IOMMU. Returns the pages written, or
    /// -ENODEV when the device is attached to no HWPT. (A device behind a legacy container writes with
    /// <see cref="SimContainer.DmaWrite"/>.) What a test or the lab's twin uses to write chosen pages where a
    /// real device would do DMA, or the kernel's mock domain IOMMU_TEST_OP_DIRTY.
    /// </summary>
    public int DmaWrite(ulong iova, ulong length)
    {
        lock (Kernel.SyncRoot)
        {
            if (IommufdBinding is not Iommufd.SimIommufdDevice { Hwpt: { } hwpt }) return -Errno.ENODEV;
            int written = 0;
            for (ulong page = iova & ~4095UL; page < iova + length; page += 4096)
            {
                if (hwpt.Ioas.FirstIntersecting(page, page) is not { Writeable: true }) continue;
                hwpt.DmaWrite(page);
                written++;
            }
            return written;
        }
    }

    private void PinPage(ulong iova)
    {
        if (_pinnedPages.Contains(iova) || Group.Container is not { } container) return;
        if (container.PinPages(iova, 1) == 0) _pinnedPages.Add(iova);
    }
}
