using System;
using System.Numerics;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// The raw type1 container calls the conformance scenarios make, each one ioctl with the kernel's byte
/// layout, returning what the kernel returned (a result or -errno). No validation of their own: the
/// scenarios record the kernel's answer to exactly what was asked.
/// </summary>
internal static class Type1Calls
{
    public const uint ReadWrite = VfioConstants.VFIO_DMA_MAP_FLAG_READ | VfioConstants.VFIO_DMA_MAP_FLAG_WRITE;

    /// <summary>VFIO_GROUP_SET_CONTAINER with the container's descriptor number.</summary>
    public static int SetContainer(VfioHost host, SafeFd group, SafeFd container) =>
        host.TryIoctl(group, VfioIoctl.VFIO_GROUP_SET_CONTAINER, BitConverter.GetBytes(container.Number));

    /// <summary>VFIO_IOMMU_MAP_DMA.</summary>
    public static int MapDma(VfioHost host, SafeFd container, ulong iova, ulong size, ulong vaddr, uint flags = ReadWrite)
    {
        var map = StructBytes.Buffer(new vfio_iommu_type1_dma_map
        {
            argsz = (uint)StructBytes.SizeOf<vfio_iommu_type1_dma_map>(),
            flags = flags,
            vaddr = vaddr,
            iova = iova,
            size = size,
        });
        return host.TryIoctl(container, VfioIoctl.VFIO_IOMMU_MAP_DMA, map);
    }

    /// <summary>VFIO_IOMMU_UNMAP_DMA without a bitmap; <paramref name="unmapped"/> is the size the kernel wrote back.</summary>
    public static int UnmapDma(VfioHost host, SafeFd container, ulong iova, ulong size, out ulong unmapped, uint flags = 0)
    {
        var unmap = StructBytes.Buffer(new vfio_iommu_type1_dma_unmap
        {
            argsz = (uint)StructBytes.SizeOf<vfio_iommu_type1_dma_unmap>(),
            flags = flags,
            iova = iova,
            size = size,
        });
        int rc = host.TryIoctl(container, VfioIoctl.VFIO_IOMMU_UNMAP_DMA, unmap);
        unmapped = StructBytes.Read<vfio_iommu_type1_dma_unmap>(unmap).size;
        return rc;
    }

    /// <summary>VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (argsz 48).</summary>
    public static int UnmapDmaWithBitmap(VfioHost host, SafeFd container, ulong iova, ulong size, ulong pgsize,
        ulong bitmapSize, ulong bitmapData, out ulong unmapped)
    {
        int head = StructBytes.SizeOf<vfio_iommu_type1_dma_unmap>();
        var unmap = StructBytes.Buffer(new vfio_iommu_type1_dma_unmap
        {
            argsz = (uint)(head + StructBytes.SizeOf<vfio_bitmap>()),
            flags = VfioConstants.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
            iova = iova,
            size = size,
        }, StructBytes.SizeOf<vfio_bitmap>());
        StructBytes.Write(unmap, new vfio_bitmap { pgsize = pgsize, size = bitmapSize, data = bitmapData }, head);
        int rc = host.TryIoctl(container, VfioIoctl.VFIO_IOMMU_UNMAP_DMA, unmap);
        unmapped = StructBytes.Read<vfio_iommu_type1_dma_unmap>(unmap).size;
        return rc;
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES START or STOP (argsz 8).</summary>
    public static int DirtyPages(VfioHost host, SafeFd container, uint flags)
    {
        var dirty = StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap
        {
            argsz = (uint)StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap>(),
            flags = flags,
        });
        return host.TryIoctl(container, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, dirty);
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES GET_BITMAP (argsz 48).</summary>
    public static int GetBitmap(VfioHost host, SafeFd container, ulong iova, ulong size, ulong pgsize, ulong bitmapSize, ulong bitmapData)
    {
        int head = StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap>();
        int tail = StructBytes.SizeOf<vfio_iommu_type1_dirty_bitmap_get>();
        var buffer = StructBytes.Buffer(new vfio_iommu_type1_dirty_bitmap
        {
            argsz = (uint)(head + tail),
            flags = VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
        }, tail);
        StructBytes.Write(buffer, new vfio_iommu_type1_dirty_bitmap_get
        {
            iova = iova,
            size = size,
            bitmap = new vfio_bitmap { pgsize = pgsize, size = bitmapSize, data = bitmapData },
        }, head);
        return host.TryIoctl(container, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES, buffer);
    }

    /// <summary>VFIO_IOMMU_GET_INFO with a zeroed buffer of <paramref name="bufferSize"/> bytes and the given argsz.</summary>
    public static int GetInfo(VfioHost host, SafeFd container, uint argsz, out byte[] buffer, int bufferSize = -1)
    {
        buffer = new byte[Math.Max(bufferSize < 0 ? (int)argsz : bufferSize, StructBytes.SizeOf<vfio_iommu_type1_info>())];
        BitConverter.TryWriteBytes(buffer, argsz);
        return host.TryIoctl(container, VfioIoctl.VFIO_IOMMU_GET_INFO, buffer);
    }

    /// <summary>Set bits among the first <paramref name="bits"/> bits of a bitmap.</summary>
    public static long CountBits(ReadOnlySpan<byte> bitmap, long bits)
    {
        long count = 0;
        long whole = bits / 8;
        for (long i = 0; i < whole; i++) count += BitOperations.PopCount(bitmap[(int)i]);
        if (bits % 8 != 0) count += BitOperations.PopCount((uint)(bitmap[(int)whole] & ((1 << (int)(bits % 8)) - 1)));
        return count;
    }
}

/// <summary>
/// Guest memory for DMA mappings: anonymous memory mapped through the seam (mmap with MAP_ANONYMOUS), as a
/// VMM maps guest RAM, unmapped on dispose.
/// </summary>
internal sealed class GuestMemory : IDisposable
{
    private readonly IVfioKernel _kernel;

    private GuestMemory(IVfioKernel kernel, nint address, long length)
    {
        _kernel = kernel;
        Address = address;
        Length = length;
    }

    /// <summary>The user address of the memory (the vaddr of MAP_DMA).</summary>
    public nint Address { get; }

    public long Length { get; }

    public static GuestMemory Map(VfioHost host, long length)
    {
        nint address = host.Kernel.Mmap((nint)length, 0, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1);
        if (address < 0) throw new VfioNativeException("mmap", (int)-address, "anonymous guest memory", $"{length} bytes");
        return new GuestMemory(host.Kernel, address, length);
    }

    public void Dispose() => _kernel.Munmap(Address, (nint)Length);
}
