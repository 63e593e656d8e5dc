using System;
using System.Collections.Generic;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>
/// A simulated host with one container, driven by raw seam calls as a user program would: groups,
/// SET_IOMMU, guest memory, maps and dirty bitmaps. Every call returns the kernel's answer (result or -errno).
/// </summary>
internal sealed class Type1Harness : IDisposable
{
    public const int IommuGroup = 2;       // edu, vfio-pci behind the VT-d
    public const int OtherIommuGroup = 3;  // e1000e
    public const int MdevGroup = 7;        // mtty
    public const ulong Page = 4096;

    private readonly Dictionary<int, SafeFd> _groups = new();
    private readonly List<IDisposable> _owned = new();

    public Type1Harness(SimHostConfiguration? configuration = null)
    {
        Kernel = new SimulatedKernel(configuration ?? SimTopologies.Lab());
        Host = new VfioHost(Kernel);
        Container = Host.Open(VfioHost.ContainerPath);
    }

    public SimulatedKernel Kernel { get; }

    public VfioHost Host { get; }

    public SafeFd Container { get; }

    /// <summary>The simulated container behind <see cref="Container"/>.</summary>
    public SimContainer Sim => (SimContainer)Kernel.Lookup(Container.Number)!;

    /// <summary>A container with the groups attached and TYPE1v2 set, all asserted to succeed.</summary>
    public static Type1Harness With(params int[] groups) => WithType(VfioConstants.VFIO_TYPE1v2_IOMMU, null, groups);

    public static Type1Harness With(SimHostConfiguration configuration, params int[] groups) =>
        WithType(VfioConstants.VFIO_TYPE1v2_IOMMU, configuration, groups);

    public static Type1Harness WithType(uint type, SimHostConfiguration? configuration, params int[] groups)
    {
        var h = new Type1Harness(configuration);
        foreach (int g in groups) Assert.Equal(0, h.Attach(g));
        Assert.Equal(0, h.SetIommu(type));
        return h;
    }

    /// <summary>The group's open file (opened on first use).</summary>
    public SafeFd Group(int number)
    {
        if (!_groups.TryGetValue(number, out var fd)) _groups[number] = fd = Host.Open($"/dev/vfio/{number}");
        return fd;
    }

    public int Attach(int group) => Type1Calls.SetContainer(Host, Group(group), Container);

    public int Detach(int group) => Host.TryIoctlValue(Group(group), VfioIoctl.VFIO_GROUP_UNSET_CONTAINER, 0);

    public int SetIommu(ulong type = VfioConstants.VFIO_TYPE1v2_IOMMU) => Host.TryIoctlValue(Container, VfioIoctl.VFIO_SET_IOMMU, type);

    public int CheckExtension(ulong extension) => Host.TryIoctlValue(Container, VfioIoctl.VFIO_CHECK_EXTENSION, extension);

    /// <summary>Anonymous guest memory of the process (freed with the harness): its address.</summary>
    public ulong Guest(long length)
    {
        var memory = GuestMemory.Map(Host, length);
        _owned.Add(memory);
        return (ulong)memory.Address;
    }

    /// <summary>MAP_DMA read-write of fresh guest memory.</summary>
    public int Map(ulong iova, ulong size) => Type1Calls.MapDma(Host, Container, iova, size, Guest((long)size));

    public int Map(ulong iova, ulong size, ulong vaddr, uint flags = Type1Calls.ReadWrite) =>
        Type1Calls.MapDma(Host, Container, iova, size, vaddr, flags);

    public int Unmap(ulong iova, ulong size) => Type1Calls.UnmapDma(Host, Container, iova, size, out _);

    public int Unmap(ulong iova, ulong size, out ulong unmapped, uint flags = 0) => Type1Calls.UnmapDma(Host, Container, iova, size, out unmapped, flags);

    public int Start() => Type1Calls.DirtyPages(Host, Container, VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_START);

    public int Stop() => Type1Calls.DirtyPages(Host, Container, VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);

    /// <summary>A zeroed bitmap buffer of <paramref name="bytes"/> bytes (freed with the harness).</summary>
    public NativeBuffer Buffer(long bytes)
    {
        var b = new NativeBuffer(bytes);
        _owned.Add(b);
        return b;
    }

    /// <summary>GET_BITMAP at the smallest page size into <paramref name="bitmap"/> (sized DIRTY_BITMAP_BYTES of the range).</summary>
    public int GetBitmap(ulong iova, ulong size, NativeBuffer bitmap) =>
        Type1Calls.GetBitmap(Host, Container, iova, size, Page, VfioConstants.DIRTY_BITMAP_BYTES(size / Page), bitmap.Address);

    public int GetBitmap(ulong iova, ulong size, ulong pgsize, ulong bitmapSize, ulong data) =>
        Type1Calls.GetBitmap(Host, Container, iova, size, pgsize, bitmapSize, data);

    /// <summary>GET_BITMAP into a fresh zeroed buffer: the dirty page numbers (relative to <paramref name="iova"/>), asserting success.</summary>
    public List<long> Dirty(ulong iova, ulong size)
    {
        using var bitmap = new NativeBuffer((long)VfioConstants.DIRTY_BITMAP_BYTES(size / Page));
        Assert.Equal(0, GetBitmap(iova, size, bitmap));
        return SetBits(bitmap.Span, (long)(size / Page));
    }

    /// <summary>The numbers of the set bits among the first <paramref name="bits"/>.</summary>
    public static List<long> SetBits(ReadOnlySpan<byte> bitmap, long bits)
    {
        var set = new List<long>();
        for (long i = 0; i < bits; i++)
            if ((bitmap[(int)(i / 8)] & (1 << (int)(i % 8))) != 0) set.Add(i);
        return set;
    }

    /// <summary>VFIO_IOMMU_GET_INFO with a buffer as large as the kernel asks for.</summary>
    public byte[] Info()
    {
        Assert.Equal(0, Type1Calls.GetInfo(Host, Container, 24, out var first));
        uint argsz = StructBytes.Read<vfio_iommu_type1_info>(first).argsz;
        Assert.Equal(0, Type1Calls.GetInfo(Host, Container, argsz, out var info));
        return info;
    }

    public void Dispose()
    {
        foreach (var g in _groups.Values) g.Dispose();
        Container.Dispose();
        foreach (var o in _owned) o.Dispose();
    }
}
