using System;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Vfio;

/// <summary>Where the memory behind a DMA mapping comes from.</summary>
public enum DmaBacking
{
    /// <summary>Anonymous memory of this process (reserved lazily).</summary>
    Anonymous,

    /// <summary>Huge pages (MAP_HUGETLB); needs huge pages reserved on the host.</summary>
    HugeTlb,

    /// <summary>A file mapped shared into this process.</summary>
    File,
}

/// <summary>Which way a device may access a mapping.</summary>
[Flags]
public enum DmaAccess
{
    Read = 1,
    Write = 2,
    ReadWrite = Read | Write,
}

/// <summary>A range of guest memory mapped for device DMA in a container (VFIO_IOMMU_MAP_DMA).</summary>
public sealed class DmaMapping
{
    internal DmaMapping(VfioContainer container, Iova iova, ulong size, ulong vaddr, DmaBacking backing, DmaAccess access, string? file, IDisposable memory)
    {
        Container = container;
        Iova = iova;
        Size = size;
        Vaddr = vaddr;
        Backing = backing;
        Access = access;
        File = file;
        Memory = memory;
    }

    /// <summary>The container holding the mapping.</summary>
    public VfioContainer Container { get; }

    /// <summary>The container's id in this session.</summary>
    public int ContainerId => Container.Id;

    /// <summary>First IOVA of the mapping.</summary>
    public Iova Iova { get; }

    /// <summary>Bytes mapped.</summary>
    public ulong Size { get; }

    /// <summary>One past the last IOVA.</summary>
    public Iova End => Iova + Size;

    /// <summary>Address of the backing memory in this process.</summary>
    public ulong Vaddr { get; }

    public DmaBacking Backing { get; }

    public DmaAccess Access { get; }

    /// <summary>The backing file, for File backing.</summary>
    public string? File { get; }

    public HostKind HostKind => Container.HostKind;

    /// <summary>The memory behind the mapping, released when the mapping is removed.</summary>
    internal IDisposable Memory { get; }

    public override string ToString() => $"{Iova}+0x{Size:x}";
}
