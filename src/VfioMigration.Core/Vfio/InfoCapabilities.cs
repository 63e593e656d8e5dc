using System;
using System.Collections.Generic;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>
/// Which info ioctl a capability chain came from. Capability ids are numbered per ioctl: id 1 is
/// IOVA_RANGE in a VFIO_IOMMU_GET_INFO chain but SPARSE_MMAP in a VFIO_DEVICE_GET_REGION_INFO chain.
/// </summary>
public enum CapabilityNamespace
{
    /// <summary>VFIO_IOMMU_GET_INFO on a type1 container (vfio_iommu_type1_info).</summary>
    IommuType1Info,

    /// <summary>VFIO_DEVICE_GET_REGION_INFO (vfio_region_info).</summary>
    RegionInfo,

    /// <summary>VFIO_DEVICE_GET_INFO (vfio_device_info; zPCI capabilities, not decoded here).</summary>
    DeviceInfo,
}

/// <summary>One capability of an info chain: its id, its version, and where its header starts in the info buffer.</summary>
public readonly record struct InfoCapability(ushort Id, ushort Version, int Offset);

/// <summary>
/// A capability chain (or an info ioctl's argsz negotiation) that cannot be right: the kernel, real or
/// simulated, answered bytes that do not describe a chain inside the buffer it was given.
/// </summary>
public sealed class VfioCapabilityChainException : Exception
{
    public VfioCapabilityChainException(string reason, int? offset = null, string? operation = null)
        : base(Format(reason, offset, operation))
    {
        Reason = reason;
        Offset = offset;
        Operation = operation;
    }

    /// <summary>What is wrong, e.g. "next offset 24 does not move forward".</summary>
    public string Reason { get; }

    /// <summary>Offset in the info buffer of the capability where the walk stopped (null if no capability is involved).</summary>
    public int? Offset { get; }

    /// <summary>The info ioctl whose answer this was, if known (e.g. "VFIO_IOMMU_GET_INFO").</summary>
    public string? Operation { get; }

    private static string Format(string reason, int? offset, string? operation)
    {
        string what = operation is null ? "VFIO capability chain" : $"{operation}: the capability chain";
        return offset is null ? $"{what} is broken: {reason}." : $"{what} is broken at offset {offset}: {reason}.";
    }
}

/// <summary>
/// The capability chain of a VFIO info ioctl answer. Each capability starts with a
/// <see cref="vfio_info_cap_header"/> whose <c>next</c> is an offset from the start of the whole
/// info buffer (0 ends the chain); the kernel builds it in order, so offsets grow
/// (drivers/vfio: vfio_info_cap_add, vfio_info_cap_shift). Capabilities need not be 8-byte aligned:
/// Linux 6.1 puts IOVA_RANGE at offset 68 (kernel-interface.md lab 7.5), so every read goes through
/// <see cref="StructBytes"/> (unaligned-safe). The walk refuses a chain that leaves the buffer,
/// overlaps itself or does not move forward, instead of looping or reading past the end.
/// </summary>
public sealed class InfoCapabilities
{
    private readonly List<InfoCapability> _entries = new();
    private vfio_iova_range[]? _iovaRanges;
    private vfio_iommu_type1_info_cap_migration? _migration;
    private uint? _dmaAvail;
    private vfio_region_info_cap_type? _regionType;
    private vfio_region_sparse_mmap_area[]? _sparseAreas;
    private bool _msixMappable;

    private InfoCapabilities(CapabilityNamespace ns) => Namespace = ns;

    /// <summary>The info ioctl the chain came from.</summary>
    public CapabilityNamespace Namespace { get; }

    /// <summary>Every capability in chain order.</summary>
    public IReadOnlyList<InfoCapability> Entries => _entries;

    /// <summary>A chain without capabilities (CAPS not set, or cap_offset 0).</summary>
    public static InfoCapabilities None(CapabilityNamespace ns) => new(ns);

    /// <summary>
    /// Walks the chain of <paramref name="info"/> from <paramref name="firstOffset"/> (the struct's
    /// cap_offset; 0 = no capabilities). <paramref name="fixedSize"/> is the size of the fixed info
    /// struct, which no capability may overlap.
    /// </summary>
    /// <exception cref="VfioCapabilityChainException">The chain does not fit the buffer or does not move forward.</exception>
    public static InfoCapabilities Parse(ReadOnlySpan<byte> info, uint firstOffset, CapabilityNamespace ns, int fixedSize = 0)
    {
        var caps = new InfoCapabilities(ns);
        if (firstOffset == 0) return caps;
        int headerSize = StructBytes.SizeOf<vfio_info_cap_header>();
        if (firstOffset < fixedSize)
            throw new VfioCapabilityChainException($"the first capability overlaps the {fixedSize}-byte info struct", (int)Math.Min(firstOffset, int.MaxValue));

        long offset = firstOffset;
        while (true)
        {
            if (offset + headerSize > info.Length)
                throw new VfioCapabilityChainException(
                    $"a capability header ({headerSize} bytes) does not fit in the {info.Length}-byte buffer", Clamp(offset));
            int at = (int)offset;
            var header = StructBytes.Read<vfio_info_cap_header>(info, at);
            long size = caps.DeclaredSize(info, at, header);
            if (offset + size > info.Length)
                throw new VfioCapabilityChainException(
                    $"capability {caps.Describe(header.id)} declares {size} bytes, past the end of the {info.Length}-byte buffer", at);

            caps._entries.Add(new InfoCapability(header.id, header.version, at));
            caps.Decode(info, at, header);

            if (header.next == 0) return caps;
            if (header.next == offset)
                throw new VfioCapabilityChainException($"next offset {header.next} points to the capability itself", at);
            if (header.next < offset)
                throw new VfioCapabilityChainException($"next offset {header.next} does not move forward", at);
            if (header.next < offset + size)
                throw new VfioCapabilityChainException(
                    $"next offset {header.next} starts inside capability {caps.Describe(header.id)}, which ends at {offset + size}", at);
            offset = header.next;
        }
    }

    /// <summary>The first capability with this id, if any.</summary>
    public InfoCapability? Find(ushort id)
    {
        foreach (var e in _entries)
        {
            if (e.Id == id) return e;
        }
        return null;
    }

    /// <summary>True if the chain has a capability with this id.</summary>
    public bool Has(ushort id) => Find(id) is not null;

    /// <summary>
    /// Type1 VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: the usable IOVA ranges (<c>end</c> inclusive), or
    /// null when the container has none (an mdev-only container, kernel-interface.md lab 7.3).
    /// </summary>
    public IReadOnlyList<vfio_iova_range>? IovaRanges => Require(CapabilityNamespace.IommuType1Info, nameof(IovaRanges))._iovaRanges;

    /// <summary>Type1 VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION: dirty-tracking page sizes and bitmap limit, or null (no type1 dirty tracking).</summary>
    public vfio_iommu_type1_info_cap_migration? Migration => Require(CapabilityNamespace.IommuType1Info, nameof(Migration))._migration;

    /// <summary>Type1 VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: how many more DMA mappings the container accepts, or null.</summary>
    public uint? DmaAvail => Require(CapabilityNamespace.IommuType1Info, nameof(DmaAvail))._dmaAvail;

    /// <summary>Region VFIO_REGION_INFO_CAP_TYPE: the region's type and subtype, or null.</summary>
    public vfio_region_info_cap_type? RegionType => Require(CapabilityNamespace.RegionInfo, nameof(RegionType))._regionType;

    /// <summary>Region VFIO_REGION_INFO_CAP_SPARSE_MMAP: the areas of the region that may be mmapped, or null.</summary>
    public IReadOnlyList<vfio_region_sparse_mmap_area>? SparseMmapAreas => Require(CapabilityNamespace.RegionInfo, nameof(SparseMmapAreas))._sparseAreas;

    /// <summary>Region VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table may be mmapped.</summary>
    public bool MsixMappable => Require(CapabilityNamespace.RegionInfo, nameof(MsixMappable))._msixMappable;

    private InfoCapabilities Require(CapabilityNamespace ns, string what) => Namespace == ns
        ? this
        : throw new InvalidOperationException($"{what} is a capability of {Ioctl(ns)}; this chain came from {Ioctl(Namespace)}.");

    private static string Ioctl(CapabilityNamespace ns) => ns switch
    {
        CapabilityNamespace.IommuType1Info => "VFIO_IOMMU_GET_INFO",
        CapabilityNamespace.RegionInfo => "VFIO_DEVICE_GET_REGION_INFO",
        _ => "VFIO_DEVICE_GET_INFO",
    };

    /// <summary>The bytes a capability occupies: its struct plus its array, for the ids this namespace knows; the header otherwise.</summary>
    private long DeclaredSize(ReadOnlySpan<byte> info, int at, vfio_info_cap_header header)
    {
        int headerSize = StructBytes.SizeOf<vfio_info_cap_header>();
        switch (Namespace, header.id)
        {
            case (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE):
                return WithArray<vfio_iommu_type1_info_cap_iova_range, vfio_iova_range>(info, at, c => c.nr_iovas);
            case (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION):
                return StructBytes.SizeOf<vfio_iommu_type1_info_cap_migration>();
            case (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL):
                return StructBytes.SizeOf<vfio_iommu_type1_info_dma_avail>();
            case (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_SPARSE_MMAP):
                return WithArray<vfio_region_info_cap_sparse_mmap, vfio_region_sparse_mmap_area>(info, at, c => c.nr_areas);
            case (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_TYPE):
                return StructBytes.SizeOf<vfio_region_info_cap_type>();
            default:
                return headerSize;
        }
    }

    /// <summary>Size of a capability struct followed by count elements; the count is read only if the struct fits.</summary>
    private static long WithArray<TCap, TElement>(ReadOnlySpan<byte> info, int at, Func<TCap, uint> count)
        where TCap : unmanaged where TElement : unmanaged
    {
        int fixedPart = StructBytes.SizeOf<TCap>();
        if ((long)at + fixedPart > info.Length) return fixedPart;
        return fixedPart + (long)count(StructBytes.Read<TCap>(info, at)) * StructBytes.SizeOf<TElement>();
    }

    /// <summary>Keeps the typed contents of the first capability of each known id (DeclaredSize has checked it fits).</summary>
    private void Decode(ReadOnlySpan<byte> info, int at, vfio_info_cap_header header)
    {
        switch (Namespace, header.id)
        {
            case (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE):
                if (_iovaRanges is null)
                {
                    var cap = StructBytes.Read<vfio_iommu_type1_info_cap_iova_range>(info, at);
                    _iovaRanges = ReadArray<vfio_iova_range>(info, at + StructBytes.SizeOf<vfio_iommu_type1_info_cap_iova_range>(), cap.nr_iovas);
                }
                break;
            case (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION):
                _migration ??= StructBytes.Read<vfio_iommu_type1_info_cap_migration>(info, at);
                break;
            case (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL):
                _dmaAvail ??= StructBytes.Read<vfio_iommu_type1_info_dma_avail>(info, at).avail;
                break;
            case (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_SPARSE_MMAP):
                if (_sparseAreas is null)
                {
                    var cap = StructBytes.Read<vfio_region_info_cap_sparse_mmap>(info, at);
                    _sparseAreas = ReadArray<vfio_region_sparse_mmap_area>(info, at + StructBytes.SizeOf<vfio_region_info_cap_sparse_mmap>(), cap.nr_areas);
                }
                break;
            case (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_TYPE):
                _regionType ??= StructBytes.Read<vfio_region_info_cap_type>(info, at);
                break;
            case (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE):
                _msixMappable = true;
                break;
        }
    }

    private static T[] ReadArray<T>(ReadOnlySpan<byte> info, int at, uint count) where T : unmanaged
    {
        var items = new T[count];
        int size = StructBytes.SizeOf<T>();
        for (int i = 0; i < items.Length; i++) items[i] = StructBytes.Read<T>(info, at + i * size);
        return items;
    }

    private string Describe(ushort id) => (Namespace, id) switch
    {
        (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) => "IOVA_RANGE (id 1)",
        (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) => "MIGRATION (id 2)",
        (CapabilityNamespace.IommuType1Info, VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) => "DMA_AVAIL (id 3)",
        (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_SPARSE_MMAP) => "SPARSE_MMAP (id 1)",
        (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_TYPE) => "TYPE (id 2)",
        (CapabilityNamespace.RegionInfo, VfioConstants.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) => "MSIX_MAPPABLE (id 3)",
        _ => $"id {id}",
    };

    private static int Clamp(long offset) => (int)Math.Min(offset, int.MaxValue);
}

/// <summary>
/// How to ask one info ioctl for its capabilities: the request, the size of its fixed struct, where
/// the struct keeps cap_offset, and which flag says a chain exists.
/// </summary>
public sealed record InfoQueryKind(IoctlRequest Request, int FixedSize, int CapOffsetField, uint CapsFlag, CapabilityNamespace Namespace)
{
    /// <summary>VFIO_IOMMU_GET_INFO on a type1 container: caps at cap_offset (16) when VFIO_IOMMU_INFO_CAPS is set.</summary>
    public static readonly InfoQueryKind IommuType1 = new(VfioIoctl.VFIO_IOMMU_GET_INFO, StructBytes.SizeOf<vfio_iommu_type1_info>(),
        16, VfioConstants.VFIO_IOMMU_INFO_CAPS, CapabilityNamespace.IommuType1Info);

    /// <summary>VFIO_DEVICE_GET_REGION_INFO: caps at cap_offset (12) when VFIO_REGION_INFO_FLAG_CAPS is set.</summary>
    public static readonly InfoQueryKind Region = new(VfioIoctl.VFIO_DEVICE_GET_REGION_INFO, StructBytes.SizeOf<vfio_region_info>(),
        12, VfioConstants.VFIO_REGION_INFO_FLAG_CAPS, CapabilityNamespace.RegionInfo);

    /// <summary>VFIO_DEVICE_GET_INFO: caps at cap_offset (16) when VFIO_DEVICE_FLAGS_CAPS is set.</summary>
    public static readonly InfoQueryKind Device = new(VfioIoctl.VFIO_DEVICE_GET_INFO, StructBytes.SizeOf<vfio_device_info>(),
        16, VfioConstants.VFIO_DEVICE_FLAGS_CAPS, CapabilityNamespace.DeviceInfo);
}

/// <summary>An info ioctl's answer: the fixed struct, its capability chain, the whole buffer, and how many calls it took.</summary>
public sealed record InfoAnswer<T>(T Info, InfoCapabilities Capabilities, byte[] Buffer, int Calls) where T : unmanaged;

/// <summary>
/// Info ioctls with capability chains. The kernel cannot know how large a chain will be before the
/// call, so a first call with argsz = sizeof(fixed struct) gets the fixed part, the CAPS flag, and in
/// argsz the size the whole answer needs (cap_offset stays 0); the caller grows the buffer and asks
/// again (kernel-interface.md a.3; kernel-interface.md lab 7.1: argsz 24 → 120). The number of calls and the size are bounded,
/// so a kernel that keeps asking for more cannot keep this looping or allocating.
/// </summary>
public static class InfoQuery
{
    /// <summary>At most this many calls (the first and three growths); a real kernel needs two.</summary>
    public const int MaxCalls = 4;

    /// <summary>Largest argsz honoured; real answers are around 100 bytes (kernel-interface.md lab 9).</summary>
    public const int MaxArgsz = 64 * 1024;

    /// <summary>VFIO_IOMMU_GET_INFO on a type1 container.</summary>
    public static InfoAnswer<vfio_iommu_type1_info> IommuInfo(VfioHost host, SafeFd container) =>
        Run<vfio_iommu_type1_info>(host, container, InfoQueryKind.IommuType1, default);

    /// <summary>VFIO_DEVICE_GET_REGION_INFO for region <paramref name="index"/>.</summary>
    public static InfoAnswer<vfio_region_info> RegionInfo(VfioHost host, SafeFd device, uint index) =>
        Run(host, device, InfoQueryKind.Region, new vfio_region_info { index = index });

    /// <summary>VFIO_DEVICE_GET_INFO.</summary>
    public static InfoAnswer<vfio_device_info> DeviceInfo(VfioHost host, SafeFd device) =>
        Run<vfio_device_info>(host, device, InfoQueryKind.Device, default);

    /// <summary>
    /// Issues <paramref name="kind"/>'s ioctl with <paramref name="input"/> (argsz is set here), growing
    /// the buffer while the kernel sets the CAPS flag and asks for a larger argsz, then walks the chain.
    /// </summary>
    /// <exception cref="VfioNativeException">The ioctl failed.</exception>
    /// <exception cref="VfioCapabilityChainException">The kernel asked for too much, too often, or answered a broken chain.</exception>
    public static InfoAnswer<T> Run<T>(VfioHost host, SafeFd fd, InfoQueryKind kind, T input) where T : unmanaged
    {
        if (StructBytes.SizeOf<T>() != kind.FixedSize)
            throw new ArgumentException($"{typeof(T).Name} is not the fixed struct of {kind.Request.Name}", nameof(input));

        int size = kind.FixedSize;
        for (int call = 1; ; call++)
        {
            var buffer = new byte[size];
            StructBytes.Write(buffer, in input);
            StructBytes.Write(buffer, (uint)size);
            host.Ioctl(fd, kind.Request, buffer);

            uint argsz = StructBytes.Read<uint>(buffer, 0);
            uint flags = StructBytes.Read<uint>(buffer, 4);
            bool hasCaps = (flags & kind.CapsFlag) != 0;
            if (hasCaps && argsz > size)
            {
                if (argsz > MaxArgsz)
                    throw new VfioCapabilityChainException(
                        $"the kernel asked for argsz {argsz}, more than the {MaxArgsz} bytes an info query accepts", operation: kind.Request.Name);
                if (call == MaxCalls)
                    throw new VfioCapabilityChainException(
                        $"the kernel still asked for a larger argsz ({argsz} > {size}) after {MaxCalls} calls", operation: kind.Request.Name);
                size = (int)argsz;
                continue;
            }

            uint capOffset = hasCaps ? StructBytes.Read<uint>(buffer, kind.CapOffsetField) : 0;
            InfoCapabilities caps;
            try
            {
                caps = InfoCapabilities.Parse(buffer, capOffset, kind.Namespace, kind.FixedSize);
            }
            catch (VfioCapabilityChainException e)
            {
                throw new VfioCapabilityChainException(e.Reason, e.Offset, kind.Request.Name);
            }
            return new InfoAnswer<T>(StructBytes.Read<T>(buffer), caps, buffer, call);
        }
    }
}
