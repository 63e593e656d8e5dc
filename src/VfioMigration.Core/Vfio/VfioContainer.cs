using System;
using System.Runtime.InteropServices;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>Which kernel interface a container is built on (docs/iommufd.md).</summary>
public enum VfioBackend
{
    /// <summary>/dev/vfio/vfio and /dev/vfio/N: the type1 IOMMU driver, its dirty tracking (VFIO_IOMMU_DIRTY_PAGES).</summary>
    Legacy,

    /// <summary>/dev/iommu and the device cdevs /dev/vfio/devices/vfioN: an IOAS, a HWPT, the IOMMU's own dirty bits.</summary>
    Iommufd,
}

/// <summary>Which backend New-VfioContainer asks for.</summary>
public enum VfioBackendChoice
{
    /// <summary>The legacy container.</summary>
    Legacy,

    /// <summary>iommufd; refused where the host has no /dev/iommu or no device cdevs.</summary>
    Iommufd,

    /// <summary>iommufd where the host has /dev/iommu and the devices' cdevs, the legacy container elsewhere.</summary>
    Auto,
}

/// <summary>
/// An open VFIO container (/dev/vfio/vfio, or the iommufd backend's /dev/iommu with an IOAS) owned by this process: its groups, its IOMMU, its DMA mappings
/// and its dirty tracking. It checks the kernel's rules before each call, so a mistake gets a sentence
/// with the numbers instead of a bare EINVAL. Disposing it stops tracking, unmaps, and closes everything.
/// </summary>
public sealed class VfioContainer : IDisposable
{
    private readonly List<VfioGroupHandle> _groups = new();
    private readonly List<DmaMapping> _mappings = new();
    private readonly Dictionary<string, VfioDevice> _devices = new(StringComparer.OrdinalIgnoreCase);
    // The mappings as (iova, size), in IOVA order: what each dirty-bitmap query plans with, kept ready
    // so a repeated query allocates nothing for it.
    private readonly List<(ulong Iova, ulong Size)> _ranges = new();

    // The mappings as the bitmaps read now carry them (DirtyBitmap.MappedRanges): a new array on every map or
    // unmap, shared by the bitmaps read in between, so a read allocates nothing for it.
    private MappedRange[] _mappedRanges = Array.Empty<MappedRange>();

    private void RangesChanged()
    {
        _mappedRanges = new MappedRange[_ranges.Count];
        for (int i = 0; i < _ranges.Count; i++) _mappedRanges[i] = new MappedRange(_ranges[i].Iova, _ranges[i].Size);
    }
    private readonly object _lock = new();
    private bool _disposed;
    // The iommufd backend: the context, the IOAS, the bound devices, the HWPT they share.
    private readonly IommufdContext? _iommufd;
    private readonly List<IommufdBoundDevice> _bound = new();
    private uint _hwptId;
    private bool _hwptAllocated;
    private bool _hwptDirty;
    private bool _domainReady;

    private VfioContainer(VfioHost host, SafeFd fd, bool numbered, IommufdContext? iommufd = null, uint ioasId = 0)
    {
        Host = host;
        Fd = fd;
        Id = numbered ? host.NextContainerId() : 0;
        _iommufd = iommufd;
        IoasId = ioasId;
        Backend = iommufd is null ? VfioBackend.Legacy : VfioBackend.Iommufd;
    }

    /// <summary>The kernel interface the container is built on.</summary>
    public VfioBackend Backend { get; }

    /// <summary>iommufd: the IOAS the mappings go into (0 for a legacy container).</summary>
    public uint IoasId { get; }

    /// <summary>iommufd: the HWPT the physical devices are attached to (an auto domain's id when the kernel chose it), or 0.</summary>
    public uint HwptId => _hwptId;

    /// <summary>iommufd: the IOMMU behind each bound physical device, as IOMMU_GET_HW_INFO said.</summary>
    public IReadOnlyList<IommuHardwareInfo> Hardware { get { lock (_lock) return _bound.Where(b => b.Hardware is not null).Select(b => b.Hardware!).ToArray(); } }

    /// <summary>The devices bound to the iommufd (none for a legacy container).</summary>
    public IReadOnlyList<IommufdBoundDevice> BoundDevices { get { lock (_lock) return _bound.ToArray(); } }

    /// <summary>The IOMMU type is set (legacy) or the devices are attached to their domain (iommufd): mappings and devices can be used.</summary>
    public bool IsReady => Backend == VfioBackend.Legacy ? IommuType != 0 : _domainReady;

    /// <summary>
    /// Null when the container can track dirty pages; else why not and what takes over, as a sentence: an
    /// iommufd container whose IOMMU has no dirty tracking (QEMU's choice order, docs/iommufd.md).
    /// </summary>
    public string? DirtyTrackingFallback
    {
        get
        {
            if (Backend == VfioBackend.Legacy || !_domainReady || _hwptDirty) return null;
            var reasons = Hardware.Select(h => h.NoDirtyTrackingReason).Where(r => r is not null).Distinct().ToList();
            string why = reasons.Count > 0 ? string.Join("; ", reasons) : "no device behind an IOMMU is bound (an emulated device has no IOMMU domain to track)";
            return $"container {Id}: the IOMMU cannot track dirty pages ({why}), so its HWPT has no dirty tracking. " +
                   "What takes over, as QEMU decides: a device's own DMA log where every device has one (Start-DirtyTracking -Device, Get-DirtyBitmap -Device); " +
                   "else the legacy container (New-VfioContainer -Backend Legacy), whose type1 tracking reports every mapped page dirty for a PCI device";
        }
    }

    /// <summary>
    /// The backend <paramref name="choice"/> means on <paramref name="host"/>: Auto is iommufd where the kernel has
    /// /dev/iommu and the device cdevs (/dev/vfio/devices), the legacy container elsewhere.
    /// </summary>
    public static VfioBackend ResolveBackend(VfioHost host, VfioBackendChoice choice) => choice switch
    {
        VfioBackendChoice.Legacy => VfioBackend.Legacy,
        VfioBackendChoice.Iommufd => VfioBackend.Iommufd,
        _ => host.Kernel.Files.Exists(IommufdConstants.IommuPath) && host.Kernel.Files.Exists(IommufdConstants.DeviceCdevFolder)
            ? VfioBackend.Iommufd : VfioBackend.Legacy,
    };

    /// <summary>Number of the container on its host (1, 2, ...); 0 for a short-lived one the user never sees.</summary>
    public int Id { get; }

    public VfioHost Host { get; }

    public HostKind HostKind => Host.Kind;

    internal SafeFd Fd { get; }

    /// <summary>The IOMMU type set (VFIO_TYPE1v2_IOMMU = 3), or 0 before SET_IOMMU.</summary>
    public uint IommuType { get; private set; }

    /// <summary>True between Start-DirtyTracking and Stop-DirtyTracking.</summary>
    public bool IsTracking { get; private set; }

    /// <summary>What GET_INFO last said; null before an IOMMU is set.</summary>
    public VfioIommuInfo? Info { get; private set; }

    /// <summary>The groups attached.</summary>
    public IReadOnlyList<VfioGroupHandle> Groups { get { lock (_lock) return _groups.ToArray(); } }

    /// <summary>The DMA mappings, in IOVA order.</summary>
    public IReadOnlyList<DmaMapping> Mappings { get { lock (_lock) return _mappings.ToArray(); } }

    /// <summary>True once disposed.</summary>
    public bool IsClosed => _disposed;

    /// <summary>
    /// Which pages dirty bitmaps can report: every mapped page when any group sits behind an IOMMU
    /// (the kernel cannot see such a device's DMA), pinned pages when every group is an mdev.
    /// </summary>
    public DirtyScope Scope
    {
        get
        {
            lock (_lock)
            {
                // iommufd: the IOMMU's own dirty bits, set by device writes.
                if (Backend == VfioBackend.Iommufd) return DirtyScope.IommuHardware;
                if (_groups.Count == 0) return DirtyScope.AllMappedPages;
                foreach (var g in _groups)
                    if (!g.IsEmulatedIommu) return DirtyScope.AllMappedPages;
                return DirtyScope.PinnedPages;
            }
        }
    }

    /// <summary>
    /// Opens a container and checks the API version. <paramref name="numbered"/> false opens one for a
    /// moment's use (inspecting a device), which takes no number from the user's containers.
    /// </summary>
    public static VfioContainer Open(VfioHost host, bool numbered = true, VfioBackend backend = VfioBackend.Legacy)
    {
        if (backend == VfioBackend.Iommufd)
        {
            var context = IommufdContext.Open(host);
            try
            {
                uint ioas = context.AllocIoas();
                return new VfioContainer(host, context.Fd, numbered, context, ioas);
            }
            catch
            {
                context.Dispose();
                throw;
            }
        }
        // Without /dev/vfio/vfio, open() would only say ENOENT: say what is missing and how to rehearse.
        if (Discovery.VfioAvailability.Missing(host) is { } missing) throw missing;
        var fd = host.Open(VfioHost.ContainerPath);
        try
        {
            int version = host.IoctlValue(fd, VfioIoctl.VFIO_GET_API_VERSION, 0);
            if (version != VfioIoctl.VFIO_API_VERSION)
                throw new VfioRuleException("UnsupportedApiVersion", $"{VfioHost.ContainerPath} speaks VFIO API version {version}; this module knows version {VfioIoctl.VFIO_API_VERSION}.");
            return new VfioContainer(host, fd, numbered);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Opens group <paramref name="number"/> and attaches it; the group is closed again if it cannot be attached.</summary>
    public VfioGroupHandle Attach(int number)
    {
        if (Backend == VfioBackend.Iommufd) return AttachThroughCdevs(number);
        var handle = VfioGroupHandle.Open(Host, number);
        try
        {
            Attach(handle);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// iommufd: binds every device of group <paramref name="number"/> through its cdev (the group itself is not
    /// opened), reads each physical device's IOMMU (IOMMU_GET_HW_INFO), and attaches them once the domain is set up.
    /// </summary>
    private VfioGroupHandle AttachThroughCdevs(int number)
    {
        ThrowIfClosed();
        lock (_lock)
        {
            if (_groups.Any(g => g.Number == number)) throw new VfioRuleException("GroupAlreadyAttached", $"group {number} is already in container {Id}.");
            var handle = VfioGroupHandle.ForCdev(Host, number);
            var added = new List<IommufdBoundDevice>();
            try
            {
                foreach (var device in handle.Info.Devices)
                {
                    var bound = _iommufd!.Bind(device);
                    added.Add(bound);
                    if (!bound.IsEmulated) bound.Hardware = _iommufd.GetHardwareInfo(bound);
                    if (_domainReady) AttachToDomain(bound);
                }
            }
            catch
            {
                foreach (var b in added) b.Fd.Dispose();
                throw;
            }
            _bound.AddRange(added);
            _groups.Add(handle);
            if (_domainReady) RefreshInfo();
            return handle;
        }
    }

    /// <summary>
    /// iommufd: the domain, as QEMU chooses it (hw/vfio/iommufd.c, iommufd_cdev_autodomains_get): a HWPT of the
    /// IOAS allocated for the first physical device, with IOMMU_HWPT_ALLOC_DIRTY_TRACKING when every physical
    /// device's IOMMU reports IOMMU_HW_CAP_DIRTY_TRACKING; where that allocation or an attach to it is refused,
    /// the devices attach to the IOAS itself and the kernel picks an auto domain (no dirty tracking). Emulated
    /// devices (mdev) attach to the IOAS.
    /// </summary>
    private void SetUpDomain()
    {
        var physical = _bound.Where(b => !b.IsEmulated).ToList();
        if (physical.Count > 0)
        {
            bool dirty = physical.All(b => b.Hardware?.DirtyTracking == true);
            uint flags = dirty ? IommufdConstants.IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0;
            if (_iommufd!.TryAllocHwpt(physical[0].DeviceId, IoasId, flags, out uint hwpt) == 0)
            {
                _hwptId = hwpt;
                _hwptAllocated = true;
                _hwptDirty = dirty;
                bool all = true;
                foreach (var b in physical)
                {
                    if (_iommufd.TryAttach(b, hwpt, out _) < 0) { all = false; break; }
                }
                if (!all)
                {
                    // An IOMMU that cannot take this domain (VT-d without second-stage translation): the kernel's own choice.
                    foreach (var b in physical.Where(b => b.AttachedTo != 0)) _iommufd.TryDetach(b);
                    _iommufd.TryDestroy(hwpt);
                    (_hwptId, _hwptAllocated, _hwptDirty) = (0, false, false);
                }
            }
            if (_hwptId == 0)
            {
                foreach (var b in physical) AttachToDomain(b);
            }
        }
        foreach (var b in _bound.Where(b => b.IsEmulated)) AttachToDomain(b);
        _domainReady = true;
    }

    /// <summary>Attaches a bound device to the container's HWPT, or to the IOAS (auto domain, or an emulated device's access).</summary>
    private void AttachToDomain(IommufdBoundDevice device)
    {
        uint pt = !device.IsEmulated && _hwptId != 0 ? _hwptId : IoasId;
        int rc = _iommufd!.TryAttach(device, pt, out uint attached);
        if (rc < 0) throw new VfioNativeException(VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT.Name, -rc, device.CdevPath, $"{device.Name} to {(pt == IoasId ? "IOAS" : "HWPT")} {pt}");
        if (!device.IsEmulated && _hwptId == 0) _hwptId = attached;
    }

    /// <summary>Attaches an open group (VFIO_GROUP_SET_CONTAINER); the container then owns it.</summary>
    public void Attach(VfioGroupHandle group)
    {
        ThrowIfClosed();
        if (Backend == VfioBackend.Iommufd) throw new VfioRuleException("GroupNotOpen", $"container {Id} is an iommufd container: it binds a group's devices through their cdevs (Attach by group number), not an open /dev/vfio/N.");
        lock (_lock)
        {
            if (_groups.Any(g => g.Number == group.Number)) throw new VfioRuleException("GroupAlreadyAttached", $"group {group.Number} is already in container {Id}.");
            group.SetContainer(Fd);
            _groups.Add(group);
            if (IommuType != 0) RefreshInfo();
        }
    }

    /// <summary>
    /// The container's open descriptor of a device, opened on first use and kept until the container
    /// closes: a device's migration state and data sessions live as long as its descriptor.
    /// </summary>
    public VfioDevice GetDevice(string name)
    {
        lock (_lock)
        {
            if (_devices.TryGetValue(name, out var open)) return open;
            var device = Backend == VfioBackend.Iommufd ? BoundDevice(name) : OpenDevice(name);
            _devices[device.Name] = device;
            return device;
        }
    }

    /// <summary>The devices the container holds open (see <see cref="GetDevice"/>).</summary>
    public IReadOnlyList<VfioDevice> Devices { get { lock (_lock) return _devices.Values.ToArray(); } }

    /// <summary>
    /// Reads something from a device without keeping it: through the session container that holds its
    /// group (reusing that container's open descriptor), or through a container of its own opened for the
    /// moment and closed again. <paramref name="read"/> also receives the holding container, or null.
    /// </summary>
    public static T ReadDevice<T>(VfioHost host, IReadOnlyList<VfioContainer> session, int group, string name, Func<VfioDevice, VfioContainer?, T> read)
    {
        var holding = session.FirstOrDefault(c => c.HoldsDevice(name));
        if (holding is not null) return read(holding.GetDevice(name), holding);
        using var temporary = Open(host, numbered: false);
        temporary.Attach(group);
        temporary.SetIommu();
        using var device = temporary.OpenDevice(name);
        return read(device, null);
    }

    /// <summary>
    /// The range a bitmap read covers when the caller leaves parts out: from <paramref name="iova"/> (or the
    /// lowest mapping) for <paramref name="size"/> bytes (or up to the end of the highest mapping, which
    /// must then lie above <paramref name="iova"/>). Throws NoMappings when there is nothing to read.
    /// </summary>
    public (ulong Iova, ulong Size) ResolveRange(ulong? iova = null, ulong? size = null)
    {
        var extent = MappedExtent;
        ulong start = iova ?? extent?.Iova ?? 0;
        if (size is { } given) return (start, given);
        ulong end = extent is { } e ? e.Iova + e.Size : 0;
        if (end <= start)
        {
            throw new VfioRuleException("NoMappings", extent is null
                ? $"Container {Id} has no DMA mappings, so there is nothing to read; map memory first, or give -Iova and -Size."
                : $"Container {Id} has no mapping at or above 0x{start:x} (its mappings end at 0x{end:x}); give -Size, or a lower -Iova.");
        }
        return (start, end - start);
    }

    /// <summary>
    /// The span from the lowest mapping to the end of the highest, or null without mappings: the range a
    /// read of every mapped page covers.
    /// </summary>
    public (ulong Iova, ulong Size)? MappedExtent
    {
        get
        {
            lock (_lock)
            {
                if (_ranges.Count == 0) return null;
                ulong end = 0;
                foreach (var r in _ranges) end = Math.Max(end, r.Iova + r.Size);
                return (_ranges[0].Iova, end - _ranges[0].Iova);
            }
        }
    }

    /// <summary>True if a device of one of the container's groups has this name.</summary>
    public bool HoldsDevice(string name)
    {
        lock (_lock) return _groups.Any(g => g.Info.FindDevice(name) is not null);
    }

    /// <summary>iommufd: the device's bound cdev descriptor, as a device the container owns (a cdev opens once).</summary>
    private VfioDevice BoundDevice(string name)
    {
        ThrowIfClosed();
        var bound = _bound.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new VfioRuleException("DeviceNotInContainer", $"device '{name}' is in none of the groups of container {Id} ({string.Join(", ", _groups.Select(g => g.Number))}).");
        if (!_domainReady) throw new VfioRuleException("IommuNotSet", $"container {Id} has not attached its devices to an IOMMU domain yet.");
        return new VfioDevice(Host, bound.Name, bound.Fd, bound.Sysfs);
    }

    /// <summary>Opens a new descriptor of a device of one of the container's groups (VFIO_GROUP_GET_DEVICE_FD); the caller disposes it.</summary>
    public VfioDevice OpenDevice(string name)
    {
        ThrowIfClosed();
        if (Backend == VfioBackend.Iommufd) throw new InvalidOperationException("an iommufd container's devices are opened once, through GetDevice.");
        lock (_lock)
        {
            var group = _groups.FirstOrDefault(g => g.Info.FindDevice(name) is not null)
                ?? throw new VfioRuleException("DeviceNotInContainer", $"device '{name}' is in none of the groups of container {Id} ({string.Join(", ", _groups.Select(g => g.Number))}).");
            if (IommuType == 0) throw new VfioRuleException("IommuNotSet", $"container {Id} has no IOMMU type yet; the kernel opens devices only after it is set.");
            var sysfs = group.Info.FindDevice(name)!;
            return new VfioDevice(Host, sysfs.Name, group.OpenDevice(sysfs.Name), sysfs);
        }
    }

    /// <summary>True if the kernel offers the extension (VFIO_CHECK_EXTENSION).</summary>
    public bool CheckExtension(uint extension) => Host.IoctlValue(Fd, VfioIoctl.VFIO_CHECK_EXTENSION, extension) > 0;

    /// <summary>VFIO_SET_IOMMU, after checking the kernel offers the type; then reads the IOMMU's info.</summary>
    public void SetIommu(uint type = VfioConstants.VFIO_TYPE1v2_IOMMU)
    {
        ThrowIfClosed();
        lock (_lock)
        {
            if (_groups.Count == 0) throw new VfioRuleException("NoGroup", "a container needs at least one group before its IOMMU type can be set.");
            if (Backend == VfioBackend.Iommufd)
            {
                // iommufd has no IOMMU type: the devices attach to a HWPT of the IOAS instead.
                if (_domainReady) throw new VfioRuleException("IommuAlreadySet", $"container {Id} has its devices attached already.");
                SetUpDomain();
                RefreshInfo();
                return;
            }
            if (IommuType != 0) throw new VfioRuleException("IommuAlreadySet", $"container {Id} already has its IOMMU type ({IommuType}).");
            if (!CheckExtension(type)) throw new VfioRuleException("IommuTypeUnsupported", $"the kernel does not offer IOMMU type {type} ({IommuTypeName(type)}) for these groups.");
            Host.IoctlValue(Fd, VfioIoctl.VFIO_SET_IOMMU, type);
            IommuType = type;
            RefreshInfo();
        }
    }

    /// <summary>Names of the type1 IOMMU types.</summary>
    public static string IommuTypeName(uint type) => type switch
    {
        VfioConstants.VFIO_TYPE1_IOMMU => "Type1",
        VfioConstants.VFIO_TYPE1v2_IOMMU => "Type1v2",
        VfioConstants.VFIO_TYPE1_NESTING_IOMMU => "Type1Nesting",
        VfioConstants.VFIO_NOIOMMU_IOMMU => "NoIommu",
        _ => type.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Reads VFIO_IOMMU_GET_INFO again (the available DMA mappings change as mappings come and go).</summary>
    public VfioIommuInfo RefreshInfo()
    {
        ThrowIfClosed();
        if (!IsReady) throw new VfioRuleException("IommuNotSet", $"container {Id} has no IOMMU type yet; attach a group and set it first.");
        Info = Backend == VfioBackend.Legacy ? IommuInfoReader.Read(Host, Fd, Id) : ReadIommufdInfo();
        return Info;
    }

    /// <summary>iommufd: IOMMU_IOAS_IOVA_RANGES and what the HWPT can do, in the legacy info's terms.</summary>
    private VfioIommuInfo ReadIommufdInfo()
    {
        var (ranges, alignment) = _iommufd!.IovaRanges(IoasId);
        return new VfioIommuInfo
        {
            ContainerId = Id,
            // The IOAS names only its alignment (the smallest IOMMU page once a domain is attached).
            IovaPageSizes = Math.Max(alignment, 4096UL),
            IovaRanges = ranges.Select(r => new IovaRange { Start = r.Start, End = r.Last }).ToArray(),
            DirtyTracking = _hwptDirty,
            // QEMU reads iommufd bitmaps at the host page size.
            DirtyPageSize = 4096,
            // iommufd has no per-call limit (iova_bitmap walks any size); the module keeps type1's 256 MiB per call.
            MaxDirtyBitmapSize = VfioConstants.DIRTY_BITMAP_SIZE_MAX,
            DmaMappingsAvailable = null,
            InfoSize = 0,
            HostKind = Host.Kind,
            Backend = VfioBackend.Iommufd,
            Hardware = Hardware,
            HwptId = _hwptId,
            IoasId = IoasId,
        };
    }

    /// <summary>Maps guest memory for DMA (VFIO_IOMMU_MAP_DMA), checking the kernel's rules first.</summary>
    public DmaMapping Map(ulong iova, ulong size, DmaBacking backing = DmaBacking.Anonymous, DmaAccess access = DmaAccess.ReadWrite, string? file = null)
    {
        ThrowIfClosed();
        lock (_lock)
        {
            var info = Info ?? throw new VfioRuleException("IommuNotSet", $"container {Id} has no IOMMU type yet; set it before mapping memory.");
            CheckMapping(info, iova, size);
            IDisposable memoryOwner;
            ulong vaddr;
            if (backing == DmaBacking.File)
            {
                if (string.IsNullOrEmpty(file)) throw new VfioRuleException("BackingFileMissing", "File backing needs the path of the file.");
                var m = GuestMemory.FromFile(file, size);
                (vaddr, memoryOwner) = (m.Address, m);
            }
            else
            {
                var m = GuestMemory.Anonymous(Host, size, backing == DmaBacking.HugeTlb);
                (vaddr, memoryOwner) = (m.Address, m);
            }
            try
            {
                if (Backend == VfioBackend.Iommufd)
                {
                    _iommufd!.Map(IoasId, iova, size, vaddr, access.HasFlag(DmaAccess.Read), access.HasFlag(DmaAccess.Write));
                }
                else
                {
                var map = new vfio_iommu_type1_dma_map
                {
                    argsz = (uint)StructBytes.SizeOf<vfio_iommu_type1_dma_map>(),
                    flags = (access.HasFlag(DmaAccess.Read) ? VfioConstants.VFIO_DMA_MAP_FLAG_READ : 0) | (access.HasFlag(DmaAccess.Write) ? VfioConstants.VFIO_DMA_MAP_FLAG_WRITE : 0),
                    vaddr = vaddr,
                    iova = iova,
                    size = size,
                };
                Host.Ioctl(Fd, VfioIoctl.VFIO_IOMMU_MAP_DMA, StructBytes.Buffer(map), $"iova 0x{iova:x} size 0x{size:x}");
                }
            }
            catch
            {
                memoryOwner.Dispose();
                throw;
            }
            var mapping = new DmaMapping(this, iova, size, vaddr, backing, access, file, memoryOwner);
            _mappings.Add(mapping);
            _mappings.Sort((a, b) => a.Iova.CompareTo(b.Iova));
            _ranges.Clear();
            foreach (var m in _mappings) _ranges.Add((m.Iova.Value, m.Size));
            RangesChanged();
            return mapping;
        }
    }

    private void CheckMapping(VfioIommuInfo info, ulong iova, ulong size)
    {
        ulong page = info.MinimumPageSize;
        if (size == 0) throw new VfioRuleException("MappingEmpty", "a DMA mapping needs a size greater than 0.");
        if (iova % page != 0 || size % page != 0)
            throw new VfioRuleException("MappingNotAligned", $"mapping 0x{iova:x}+0x{size:x} is not aligned to the IOMMU's smallest page 0x{page:x}: both IOVA and size must be multiples of it.");
        if (iova + size < iova) throw new VfioRuleException("MappingWraps", $"mapping 0x{iova:x}+0x{size:x} wraps around the address space.");
        var clash = _mappings.FirstOrDefault(m => iova < m.End.Value && m.Iova.Value < iova + size);
        if (clash is not null)
            throw new VfioRuleException("MappingOverlaps", $"mapping 0x{iova:x}+0x{size:x} overlaps the mapping {clash}; the kernel answers EEXIST.");
        if (info.IovaRanges.Count > 0 && !info.IovaRanges.Any(r => iova >= r.Start.Value && iova + size - 1 <= r.End.Value))
            throw new VfioRuleException("MappingOutsideIovaRanges", $"mapping 0x{iova:x}+0x{size:x} is not inside one usable IOVA range ({string.Join(", ", info.IovaRanges)}); the gaps are reserved (e.g. the MSI window).");
        if (info.DmaMappingsAvailable is 0)
            throw new VfioRuleException("MappingLimitReached", $"container {Id} holds as many DMA mappings as the kernel allows (dma_entry_limit); the kernel answers ENOSPC.");
    }

    /// <summary>
    /// Removes a mapping (VFIO_IOMMU_UNMAP_DMA). While tracking, with <paramref name="getDirtyBitmap"/>,
    /// the kernel returns the mapping's dirty pages as it unmaps it (GET_DIRTY_BITMAP); else null.
    /// </summary>
    public DirtyBitmap? Unmap(DmaMapping mapping, bool getDirtyBitmap = false)
    {
        ThrowIfClosed();
        lock (_lock)
        {
            if (!_mappings.Contains(mapping)) throw new VfioRuleException("MappingNotFound", $"{mapping} is not a mapping of container {Id}.");
            DirtyBitmap? bitmap = null;
            if (getDirtyBitmap)
            {
                if (!IsTracking) throw new VfioRuleException("TrackingNotStarted", $"container {Id} is not tracking dirty pages, so the kernel has no bitmap to return with the unmap (EINVAL); start tracking or unmap without it.");
                bitmap = Backend == VfioBackend.Iommufd ? IommufdBitmap(mapping.Iova, mapping.Size, noClear: true, null, default) : UnmapWithBitmap(mapping);
                if (Backend == VfioBackend.Iommufd) IommufdUnmap(mapping);
            }
            else if (Backend == VfioBackend.Iommufd)
            {
                IommufdUnmap(mapping);
            }
            else
            {
                var unmap = new vfio_iommu_type1_dma_unmap { argsz = (uint)StructBytes.SizeOf<vfio_iommu_type1_dma_unmap>(), iova = mapping.Iova, size = mapping.Size };
                Host.Ioctl(Fd, VfioIoctl.VFIO_IOMMU_UNMAP_DMA, StructBytes.Buffer(unmap), mapping.ToString());
            }
            _mappings.Remove(mapping);
            _ranges.RemoveAll(r => r.Iova == mapping.Iova.Value);
            RangesChanged();
            mapping.Memory.Dispose();
            return bitmap;
        }
    }

    /// <summary>IOMMU_IOAS_UNMAP of one whole mapping.</summary>
    private void IommufdUnmap(DmaMapping mapping)
    {
        int rc = _iommufd!.TryUnmap(IoasId, mapping.Iova, mapping.Size, out _);
        if (rc < 0) throw new VfioNativeException(IommufdIoctl.IOMMU_IOAS_UNMAP.Name, -rc, IommufdConstants.IommuPath, mapping.ToString());
    }

    private DirtyBitmap UnmapWithBitmap(DmaMapping mapping)
    {
        var info = Info!;
        ulong pages = mapping.Size / info.DirtyPageSize;
        ulong bytes = VfioConstants.DIRTY_BITMAP_BYTES(pages);
        if (bytes > info.MaxDirtyBitmapSize)
            throw new VfioRuleException("MappingTooLargeForOneCall", $"the mapping {mapping} needs {bytes} bytes of bitmap, more than the kernel returns in one call ({info.MaxDirtyBitmapSize}).");
        // Written by the kernel straight into the result (pinned): the unmapped range starts at bit 0, and the
        // kernel writes every word of it, so nothing is cleared first.
        var words = AllocateBitmap(BitmapMath.WordsFor(pages), out _);
        Span<byte> arg = stackalloc byte[StructBytes.SizeOf<vfio_iommu_type1_dma_unmap>() + StructBytes.SizeOf<vfio_bitmap>()];
        StructBytes.Write(arg, new vfio_iommu_type1_dma_unmap { argsz = (uint)arg.Length, flags = VfioConstants.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, iova = mapping.Iova, size = mapping.Size });
        StructBytes.Write(arg, new vfio_bitmap { pgsize = info.DirtyPageSize, size = bytes, data = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(words, 0) }, StructBytes.SizeOf<vfio_iommu_type1_dma_unmap>());
        Host.Ioctl(Fd, VfioIoctl.VFIO_IOMMU_UNMAP_DMA, arg, $"{mapping} with GET_DIRTY_BITMAP");
        return new DirtyBitmap(mapping.Iova, mapping.Size, info.DirtyPageSize, words, Scope, Host.Kind, Host.Description, DateTimeOffset.Now)
        {
            MappedRanges = new[] { new MappedRange(mapping.Iova.Value, mapping.Size) },
        };
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES START: the kernel records dirty pages from now on.</summary>
    public void StartDirtyTracking()
    {
        ThrowIfClosed();
        lock (_lock)
        {
            RequireDirtyTracking();
            if (Backend == VfioBackend.Iommufd)
            {
                int rc = _iommufd!.TrySetDirtyTracking(_hwptId, enable: true);
                if (rc < 0) throw new VfioNativeException(IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING.Name, -rc, IommufdConstants.IommuPath, $"hwpt {_hwptId} enable");
                IsTracking = true;
                return;
            }
            var arg = StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap { argsz = 8, flags = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_START });
            Host.Ioctl(Fd, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, arg, "START");
            IsTracking = true;
            PrepareFirstResult();
        }
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES STOP: the kernel forgets what it recorded.</summary>
    public void StopDirtyTracking()
    {
        ThrowIfClosed();
        lock (_lock)
        {
            RequireDirtyTracking();
            if (Backend == VfioBackend.Iommufd)
            {
                int rc = _iommufd!.TrySetDirtyTracking(_hwptId, enable: false);
                if (rc < 0) throw new VfioNativeException(IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING.Name, -rc, IommufdConstants.IommuPath, $"hwpt {_hwptId} disable");
                IsTracking = false;
                return;
            }
            var arg = StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap { argsz = 8, flags = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP });
            Host.Ioctl(Fd, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, arg, "STOP");
            IsTracking = false;
            _preparedResult = null;
        }
    }

    private void RequireDirtyTracking()
    {
        if (Backend == VfioBackend.Iommufd)
        {
            if (!_domainReady) throw new VfioRuleException("IommuNotSet", $"container {Id} has not attached its devices to an IOMMU domain yet.");
            if (!_hwptDirty) throw new VfioRuleException("IommuNoDirtyTracking", DirtyTrackingFallback! + ".");
            return;
        }
        if (IommuType == 0) throw new VfioRuleException("IommuNotSet", $"container {Id} has no IOMMU type yet; attach a group and set it first.");
        if (IommuType != VfioConstants.VFIO_TYPE1v2_IOMMU)
            throw new VfioRuleException("NotType1v2", $"dirty tracking needs the Type1v2 IOMMU; container {Id} uses {IommuTypeName(IommuType)} (the kernel answers EACCES).");
        if (Info is { DirtyTracking: false })
            throw new VfioRuleException("NoDirtyTracking", $"the kernel reports no migration capability for container {Id}, so it cannot track dirty pages (an iommufd-provided /dev/vfio/vfio has none).");
    }

    /// <summary>
    /// Reads (and so clears) the dirty pages of a range: the range is cut into GET_BITMAP calls that each
    /// cover whole mappings and the gaps between them and stay within the kernel's maximum bitmap per call.
    /// <paramref name="progress"/> receives (bytes done, bytes total) after each call.
    /// </summary>
    public DirtyBitmap GetDirtyBitmap(ulong iova, ulong size, Action<ulong, ulong>? progress = null, CancellationToken cancel = default, bool noClear = false)
    {
        ThrowIfClosed();
        lock (_lock)
        {
            RequireDirtyTracking();
            var info = Info!;
            if (!IsTracking)
                throw new VfioRuleException("TrackingNotStarted", $"container {Id} is not tracking dirty pages; start tracking first (the kernel answers EINVAL).");
            if (Backend == VfioBackend.Iommufd) return IommufdBitmap(iova, size, noClear, progress, cancel);
            if (noClear)
                throw new VfioRuleException("NoClearUnsupported", $"container {Id} is a legacy (type1) container: VFIO_IOMMU_DIRTY_PAGES always clears what it reads. Only an iommufd container reads without clearing (New-VfioContainer -Backend Iommufd).");
            ulong page = info.DirtyPageSize;
            var calls = DirtyBitmapPlan.PlanSorted(_ranges, iova, size, page, info.MaxDirtyBitmapSize);
            ulong pages = size / page;
            // The result itself is what the kernel writes into, pinned so its address holds during the calls.
            // It is not cleared as a whole: the kernel writes whole words for every mapping, so only the words
            // it does not write whole (the gaps, and what is read into scratch and ORed in) are zeroed first:
            // one pass over the bitmap, the kernel's.
            var words = AllocateBitmap(BitmapMath.WordsFor(pages), out bool zeroed);
            if (!zeroed) DirtyBitmapPlan.ZeroUnwritten(words, _ranges, calls, iova, size, page);
            ulong done = 0, total = 0;
            foreach (var call in calls) total += call.Size;
            Span<byte> arg = stackalloc byte[StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap>() + StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap_get>()];
            NativeBuffer? scratch = null;
            try
            {
                foreach (var call in calls)
                {
                    cancel.ThrowIfCancellationRequested();
                    ulong callPages = call.Size / page;
                    ulong bytes = VfioConstants.DIRTY_BITMAP_BYTES(callPages);
                    ulong firstBit = (call.Iova - iova) / page;
                    ulong data = CallTarget(words, firstBit, bytes, ref scratch, out bool inPlace);
                    StructBytes.Write(arg, new vfio_iommu_type1_dirty_bitmap { argsz = (uint)arg.Length, flags = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP });
                    StructBytes.Write(arg, new vfio_iommu_type1_dirty_bitmap_get
                    {
                        iova = call.Iova,
                        size = call.Size,
                        bitmap = new vfio_bitmap { pgsize = page, size = bytes, data = data },
                    }, StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap>());
                    // The call's description is built only for a trace or an error: a repeated query allocates nothing else.
                    string? detail = Host.Trace is null ? null : Describe(call);
                    int rc = Host.TryIoctl(Fd, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, arg, detail);
                    if (rc < 0) throw new VfioNativeException(VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Name, -rc, Fd.Target, detail ?? Describe(call));
                    if (!inPlace) BitmapMath.OrBits(words, firstBit, BitmapMath.AsWords(scratch!.Slice(0, (int)bytes)), callPages);
                    done += call.Size;
                    progress?.Invoke(done, total);
                }
            }
            finally
            {
                // Scratch lives for one query only: nothing large is kept between queries.
                scratch?.Dispose();
            }
            return new DirtyBitmap(iova, size, page, words, Scope, Host.Kind, Host.Description, DateTimeOffset.Now) { MappedRanges = _mappedRanges };
        }
    }

    // Large results a query dropped are garbage the GC sees only at a gen2 collection, which a machine with
    // memory to spare rarely runs: in a loop of queries they pile up (ten 1 TiB queries held 290 MiB). So a
    // query that allocates a large bitmap first asks for a background gen2 collection, once per such
    // allocation and only when none ran since the last one: the dead bitmaps of earlier queries go back
    // while this one is read, and memory stays near the bitmaps a script still holds. (A blocking
    // collection instead got a tight loop to reuse memory two queries sooner, but cost every repeated query
    // 4-25 ms more: docs/performance.md P6.)
    private const long LargeBitmapBytes = 4L << 20;
    private static int s_gen2AtLastLargeBitmap = -1;

    /// <summary>
    /// A pinned result of <paramref name="words"/> words for the kernel to write into: the prepared first
    /// result (<paramref name="zeroed"/>), or memory as the GC hands it out, not cleared.
    /// </summary>
    private ulong[] AllocateBitmap(long words, out bool zeroed)
    {
        // The prepared result serves the first query only, whatever its range.
        var prepared = _preparedResult;
        _preparedResult = null;
        zeroed = prepared is not null && prepared.LongLength == words;
        if (zeroed) return prepared!;
        if (words * 8 >= LargeBitmapBytes)
        {
            int gen2 = GC.CollectionCount(2);
            if (gen2 == s_gen2AtLastLargeBitmap) GC.Collect(2, GCCollectionMode.Forced, blocking: false, compacting: false);
            s_gen2AtLastLargeBitmap = GC.CollectionCount(2);
        }
        return UninitializedResult(checked((int)words));
    }

    /// <summary>Where results come from: pinned, not cleared. Tests hand out memory full of stale bits instead.</summary>
    internal Func<int, ulong[]> UninitializedResult { get; set; } = static n => GC.AllocateUninitializedArray<ulong>(n, pinned: true);

    // The result of the first read of every mapped page, allocated and written once when tracking starts.
    // Repeated queries get their memory from what the GC already holds, but the first large one got fresh
    // memory, and the kernel gave it its pages one 4 KiB fault at a time while the query waited (a 1 TiB
    // guest's 32 MiB: 8192 faults, 80-140 ms on the project machine, ten times the query itself). Paying
    // that when tracking starts, as QEMU allocates its dirty bitmaps at migration setup, keeps it out of
    // the first pre-copy round, where a query's time is a round's time. The first query takes it if it reads
    // exactly the mapped extent, and drops it otherwise; Stop-DirtyTracking and Close drop it too.
    private ulong[]? _preparedResult;

    private void PrepareFirstResult()
    {
        if (MappedExtent is not { } extent || Info is not { } info || info.DirtyPageSize == 0) return;
        long words = BitmapMath.WordsFor(extent.Size / info.DirtyPageSize);
        if (words * 8 < LargeBitmapBytes || words > Array.MaxLength) return;
        var prepared = GC.AllocateArray<ulong>((int)words, pinned: true);
        // Writing zeros makes the kernel back every page now (a read would map the shared zero page only).
        prepared.AsSpan().Clear();
        _preparedResult = prepared;
    }

    /// <summary>
    /// Where one bitmap call writes: a call that starts on a word of the pinned result is written in place; one
    /// that does not (a mapping that starts mid-word, after a gap too large for one call) is read into a zeroed
    /// scratch buffer, grown as needed, that the caller ORs in at its bit.
    /// </summary>
    private static ulong CallTarget(ulong[] words, ulong firstBit, ulong bytes, ref NativeBuffer? scratch, out bool inPlace)
    {
        inPlace = firstBit % 64 == 0;
        if (inPlace) return (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(words, checked((int)(firstBit / 64)));
        if (scratch is null || scratch.Length < (long)bytes)
        {
            scratch?.Dispose();
            scratch = new NativeBuffer((long)bytes);
        }
        scratch.Clear((long)bytes);
        return scratch.Address;
    }

    private static string Describe(BitmapCall call) => $"GET_BITMAP iova 0x{call.Iova:x} size 0x{call.Size:x}";

    /// <summary>
    /// iommufd: IOMMU_HWPT_GET_DIRTY_BITMAP over the mapped parts of the range. The kernel refuses a range with a
    /// hole in it (EINVAL), so each call covers one run of adjacent mappings (cut to the per-call bitmap limit);
    /// the gaps read clean. The kernel only sets bits, so the result starts zeroed.
    /// </summary>
    private DirtyBitmap IommufdBitmap(ulong iova, ulong size, bool noClear, Action<ulong, ulong>? progress, CancellationToken cancel)
    {
        const ulong page = 4096;
        if (size == 0) throw new VfioRuleException("RangeEmpty", "the range has no bytes: give a -Size.");
        if (iova % page != 0 || size % page != 0)
            throw new VfioRuleException("RangeNotAligned", $"range 0x{iova:x}+0x{size:x} is not aligned to the bitmap's page 0x{page:x}; the kernel answers EINVAL.");
        if (iova + size < iova) throw new VfioRuleException("RangeWraps", $"range 0x{iova:x}+0x{size:x} wraps past 2^64.");
        ulong end = iova + size;
        // Runs of adjacent mappings, cut to the range.
        var calls = new List<(ulong Iova, ulong Size)>();
        ulong maxBytesPerCall = Info!.MaxDirtyBitmapSize == 0 ? VfioConstants.DIRTY_BITMAP_SIZE_MAX : Info.MaxDirtyBitmapSize;
        ulong maxPerCall = maxBytesPerCall * 8 * page;
        ulong? runStart = null, runEnd = null;
        void Flush()
        {
            if (runStart is not { } a || runEnd is not { } b) return;
            ulong s0 = Math.Max(a, iova), e0 = Math.Min(b, end);
            for (ulong at = s0; at < e0; at += Math.Min(maxPerCall, e0 - at)) calls.Add((at, Math.Min(maxPerCall, e0 - at)));
            runStart = runEnd = null;
        }
        foreach (var (start, length) in _ranges)
        {
            if (runEnd == start) { runEnd = start + length; continue; }
            Flush();
            runStart = start;
            runEnd = start + length;
        }
        Flush();
        ulong pages = size / page;
        var words = GC.AllocateArray<ulong>(checked((int)BitmapMath.WordsFor(pages)), pinned: true);
        ulong done = 0, total = 0;
        foreach (var c in calls) total += c.Size;
        NativeBuffer? scratch = null;
        try
        {
            foreach (var call in calls)
            {
                cancel.ThrowIfCancellationRequested();
                ulong callPages = call.Size / page;
                ulong bytes = VfioConstants.DIRTY_BITMAP_BYTES(callPages);
                ulong firstBit = (call.Iova - iova) / page;
                ulong data = CallTarget(words, firstBit, bytes, ref scratch, out bool inPlace);
                string detail = $"hwpt {_hwptId} iova 0x{call.Iova:x} length 0x{call.Size:x}{(noClear ? " NO_CLEAR" : "")}";
                int rc = _iommufd!.TryGetDirtyBitmap(_hwptId, call.Iova, call.Size, page, data, noClear, detail);
                if (rc < 0) throw new VfioNativeException(IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP.Name, -rc, IommufdConstants.IommuPath, detail);
                if (!inPlace) BitmapMath.OrBits(words, firstBit, BitmapMath.AsWords(scratch!.Slice(0, (int)bytes)), callPages);
                done += call.Size;
                progress?.Invoke(done, total);
            }
        }
        finally
        {
            scratch?.Dispose();
        }
        return new DirtyBitmap(iova, size, page, words, DirtyScope.IommuHardware, Host.Kind, Host.Description, DateTimeOffset.Now) { MappedRanges = _mappedRanges };
    }

    private void ThrowIfClosed()
    {
        if (_disposed) throw new VfioRuleException("ContainerClosed", $"container {Id} is closed.");
    }

    /// <summary>Stops tracking, unmaps every mapping, detaches the groups and closes the container.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            if (Backend == VfioBackend.Iommufd)
            {
                DisposeIommufd();
                return;
            }
            if (IsTracking)
            {
                var arg = StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap { argsz = 8, flags = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP });
                Host.TryIoctl(Fd, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, arg);
                IsTracking = false;
            }
            foreach (var m in _mappings)
            {
                var unmap = new vfio_iommu_type1_dma_unmap { argsz = (uint)StructBytes.SizeOf<vfio_iommu_type1_dma_unmap>(), iova = m.Iova, size = m.Size };
                Host.TryIoctl(Fd, VfioIoctl.VFIO_IOMMU_UNMAP_DMA, StructBytes.Buffer(unmap));
                m.Memory.Dispose();
            }
            _mappings.Clear();
            _ranges.Clear();
            RangesChanged();
            // Devices first: a group with open devices cannot leave its container (EBUSY).
            foreach (var d in _devices.Values) d.Dispose();
            _devices.Clear();
            foreach (var g in _groups)
            {
                g.UnsetContainer();
                g.Dispose();
            }
            _groups.Clear();
            Fd.Dispose();
            _preparedResult = null;
            _disposed = true;
        }
    }

    public override string ToString() => $"container {Id}";

    /// <summary>iommufd: stop tracking, unmap, close the devices (which unbinds and detaches them), destroy the HWPT and the IOAS, close /dev/iommu.</summary>
    private void DisposeIommufd()
    {
        if (IsTracking)
        {
            _iommufd!.TrySetDirtyTracking(_hwptId, enable: false);
            IsTracking = false;
        }
        foreach (var m in _mappings)
        {
            _iommufd!.TryUnmap(IoasId, m.Iova, m.Size, out _);
            m.Memory.Dispose();
        }
        _mappings.Clear();
        _ranges.Clear();
        foreach (var d in _devices.Values) d.Dispose();
        _devices.Clear();
        foreach (var b in _bound) b.Fd.Dispose();
        _bound.Clear();
        if (_hwptAllocated) _iommufd!.TryDestroy(_hwptId);
        _iommufd!.TryDestroy(IoasId);
        foreach (var g in _groups) g.Dispose();
        _groups.Clear();
        _iommufd.Dispose();
        _preparedResult = null;
        _disposed = true;
    }

}
