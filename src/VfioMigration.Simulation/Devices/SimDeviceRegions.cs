using System;
using System.Buffers.Binary;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// A device's regions and interrupts as VFIO_DEVICE_GET_REGION_INFO / GET_IRQ_INFO and pread/pwrite/mmap
/// of the device fd show them. A PCI device answers as vfio_pci_core.c does for a simple function
/// (BAR0 1 MiB of MMIO, no ROM, no VGA; config space of 256 or 4096 bytes); an mdev as mtty does
/// (config space 0xff bytes, one or two 8-byte I/O BARs, no mmap). The v1 migration region, when the
/// device has one, is the device-specific region at index 9.
/// </summary>
internal sealed class SimDeviceRegions
{
    /// <summary>VFIO_PCI_OFFSET_SHIFT (and mtty's MTTY_VFIO_PCI_OFFSET_SHIFT): a region's offset in the fd is index &lt;&lt; 40.</summary>
    public const int OffsetShift = 40;

    private const long OffsetMask = (1L << OffsetShift) - 1;
    private const long PageSize = 4096;
    private const long Bar0Size = 0x100000;   // QEMU edu: 1 MiB of MMIO
    private const int MttyConfigSize = 0xff;  // MTTY_CONFIG_SPACE_SIZE
    private const int MttyIoBarSize = 8;      // MTTY_IO_BAR_SIZE

    private readonly SimDevice _device;
    private readonly byte[] _config;
    private readonly byte[][] _mttyBars = { new byte[MttyIoBarSize], new byte[MttyIoBarSize] };
    private NativeBuffer? _bar0;

    public SimDeviceRegions(SimDevice device)
    {
        _device = device;
        var c = device.Config;
        _config = new byte[device.IsMdev ? MttyConfigSize : device.IsPciExpress ? 4096 : 256];
        BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(0), (ushort)c.VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(2), (ushort)c.DeviceId);
        _config[0x3d] = 1; // interrupt pin INTA#
    }

    /// <summary>Regions after the nine PCI ones (the v1 migration region).</summary>
    public uint DeviceRegions => _device.MigrationV1 is null ? 0u : 1u;

    public uint NumRegions => VFIO_PCI_NUM_REGIONS + DeviceRegions;

    /// <summary>mtty-2 has two ports (BAR0 and BAR1), mtty-1 one.</summary>
    private int MttyPorts => string.Equals(_device.Config.MdevType, "mtty-1", StringComparison.Ordinal) ? 1 : 2;

    /// <summary>VFIO_DEVICE_GET_REGION_INFO: 0 or -errno.</summary>
    public int GetRegionInfo(Span<byte> arg)
    {
        const int minsz = 32; // offsetofend(struct vfio_region_info, offset)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var info = StructBytes.Read<vfio_region_info>(arg);
        if (info.argsz < minsz) return -Errno.EINVAL;
        byte[]? caps = null;
        uint index = info.index;
        if (index >= VFIO_PCI_NUM_REGIONS)
        {
            if (index >= NumRegions) return -Errno.EINVAL;
            var v1 = _device.MigrationV1!;
            info.size = (ulong)v1.Size;
            info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
            caps = MigrationRegionCaps(v1);
        }
        else if (_device.IsMdev)
        {
            // mtty_get_region_info: every index below 9 is READ|WRITE, most of size 0.
            info.size = index switch
            {
                VFIO_PCI_CONFIG_REGION_INDEX => MttyConfigSize,
                0 => MttyIoBarSize,
                1 when MttyPorts == 2 => MttyIoBarSize,
                _ => 0,
            };
            info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        }
        else
        {
            switch (index)
            {
                case VFIO_PCI_CONFIG_REGION_INDEX:
                    info.size = (ulong)_config.Length;
                    info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
                    break;
                case VFIO_PCI_BAR0_REGION_INDEX:
                    info.size = Bar0Size;
                    info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
                    break;
                case VFIO_PCI_VGA_REGION_INDEX:
                    return -Errno.EINVAL; // !vdev->has_vga
                default:
                    info.size = 0; // unimplemented BARs and no ROM
                    info.flags = 0;
                    break;
            }
        }
        info.offset = (ulong)index << OffsetShift;
        if (caps is not null)
        {
            // The capability chain follows the struct; a buffer too small for it gets the size needed.
            info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
            if (info.argsz < minsz + caps.Length)
            {
                info.argsz = (uint)(minsz + caps.Length);
                info.cap_offset = 0;
            }
            else
            {
                if (arg.Length < minsz + caps.Length) return -Errno.EFAULT;
                caps.CopyTo(arg.Slice(minsz));
                info.cap_offset = minsz;
            }
        }
        StructBytes.Write(arg, info);
        return 0;
    }

    /// <summary>VFIO_REGION_INFO_CAP_TYPE (3/1), then VFIO_REGION_INFO_CAP_SPARSE_MMAP for the data section; offsets as after vfio_info_cap_shift(32).</summary>
    private static byte[] MigrationRegionCaps(SimMigrationV1Region v1)
    {
        const int info = 32, typeSize = 16, sparseSize = 16 + 16;
        var caps = new byte[typeSize + sparseSize];
        StructBytes.Write(caps, new vfio_region_info_cap_type
        {
            header = new vfio_info_cap_header { id = VFIO_REGION_INFO_CAP_TYPE, version = 1, next = info + typeSize },
            type = VFIO_REGION_TYPE_MIGRATION,
            subtype = VFIO_REGION_SUBTYPE_MIGRATION,
        });
        StructBytes.Write(caps, new vfio_region_info_cap_sparse_mmap
        {
            header = new vfio_info_cap_header { id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, version = 1, next = 0 },
            nr_areas = 1,
        }, typeSize);
        var (offset, size) = v1.SparseArea;
        StructBytes.Write(caps, new vfio_region_sparse_mmap_area { offset = offset, size = size }, typeSize + 16);
        return caps;
    }

    /// <summary>VFIO_DEVICE_GET_IRQ_INFO: 0 or -errno.</summary>
    public int GetIrqInfo(Span<byte> arg)
    {
        const int minsz = 16; // offsetofend(struct vfio_irq_info, count)
        if (arg.Length < minsz) return -Errno.EFAULT;
        var info = StructBytes.Read<vfio_irq_info>(arg);
        if (_device.IsMdev)
        {
            // mtty_ioctl checks the index against the num_irqs it saved at the last GET_INFO (0 before any).
            uint numIrqs = _device.InfoQueried ? VFIO_PCI_NUM_IRQS : 0;
            if (info.argsz < minsz || info.index >= numIrqs) return -Errno.EINVAL;
            if (info.index != VFIO_PCI_INTX_IRQ_INDEX && info.index != VFIO_PCI_MSI_IRQ_INDEX) return -Errno.EINVAL;
            info.flags = VFIO_IRQ_INFO_EVENTFD | (info.index == VFIO_PCI_INTX_IRQ_INDEX
                ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED
                : VFIO_IRQ_INFO_NORESIZE);
            info.count = 1;
        }
        else
        {
            if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) return -Errno.EINVAL;
            // The ERR interrupt exists for PCI Express functions only (pci_is_pcie).
            if (info.index == VFIO_PCI_ERR_IRQ_INDEX && !_device.IsPciExpress) return -Errno.EINVAL;
            info.flags = VFIO_IRQ_INFO_EVENTFD;
            // vfio_pci_get_irq_count: INTx if a pin, one MSI vector, no MSI-X table, one ERR and one REQ.
            info.count = info.index == VFIO_PCI_MSIX_IRQ_INDEX ? 0u : 1u;
            if (info.index == VFIO_PCI_INTX_IRQ_INDEX) info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
            else info.flags |= VFIO_IRQ_INFO_NORESIZE; // no dynamic MSI-X
        }
        StructBytes.Write(arg, info);
        return 0;
    }

    /// <summary>pread of the device fd: bytes read or -errno.</summary>
    public long Read(Span<byte> buffer, long offset)
    {
        if (IsMttyPortAccess(offset, out int port, out long register)) return MttyAccess(port, register, buffer, write: false);
        long rc = Access(offset, buffer.Length, out var source, out bool v1, out long v1Offset);
        if (rc < 0) return rc;
        if (v1) return _device.MigrationV1!.Read(buffer, v1Offset);
        source.CopyTo(buffer);
        return source.Length;
    }

    /// <summary>pwrite of the device fd: bytes written or -errno.</summary>
    public long Write(ReadOnlySpan<byte> buffer, long offset)
    {
        if (IsMttyPortAccess(offset, out int port, out long register))
        {
            // MttyAccess only reads the buffer when writing; the copy keeps one code path for both directions.
            var copy = buffer.ToArray();
            return MttyAccess(port, register, copy, write: true);
        }
        long rc = Access(offset, buffer.Length, out var target, out bool v1, out long v1Offset);
        if (rc < 0) return rc;
        if (v1) return _device.MigrationV1!.Write(buffer, v1Offset);
        long index = offset >> OffsetShift, within = offset & OffsetMask;
        if (index == VFIO_PCI_CONFIG_REGION_INDEX && !_device.IsMdev)
        {
            // vfio_pci_config_rw virtualizes config space: the identity registers do not change.
            for (int i = 0; i < target.Length; i++)
            {
                long at = within + i;
                if (at is >= 0 and < 4 or >= 8 and < 12 or 0x0e) continue;
                target[i] = buffer[i];
            }
            return target.Length;
        }
        buffer.Slice(0, target.Length).CopyTo(target);
        return target.Length;
    }

    /// <summary>mmap of the device fd: the address of device memory for [offset, offset + length), or -errno.</summary>
    public nint Map(long length, long offset, int flags)
    {
        if ((offset & (PageSize - 1)) != 0) return -Errno.EINVAL; // mmap(2): offset must be page aligned
        long index = offset >> OffsetShift, start = offset & OffsetMask;
        long pages = (length + PageSize - 1) & ~(PageSize - 1);
        if (_device.IsMdev && _device.MigrationV1 is null) return -Errno.EINVAL; // mtty has no mmap
        if (index >= NumRegions) return -Errno.EINVAL;
        if ((flags & Libc.MAP_SHARED) == 0) return -Errno.EINVAL; // vfio_pci_core_mmap: VM_SHARED only
        if (index >= VFIO_PCI_NUM_REGIONS) return _device.MigrationV1!.Map(start, pages);
        if (_device.IsMdev || index != VFIO_PCI_BAR0_REGION_INDEX) return -Errno.EINVAL; // no other mmappable BAR
        if (start + pages > Bar0Size) return -Errno.EINVAL;
        return (nint)Bar0().Address + (nint)start;
    }

    /// <summary>An access to BAR0 or BAR1 of an mtty: the serial port's registers (mdev_access does not check the offset against the BAR's size).</summary>
    private bool IsMttyPortAccess(long offset, out int port, out long register)
    {
        long index = offset >> OffsetShift;
        port = (int)index;
        register = offset & OffsetMask;
        return _device.MttyPorts is not null && offset >= 0 && index is VFIO_PCI_BAR0_REGION_INDEX or VFIO_PCI_BAR1_REGION_INDEX;
    }

    /// <summary>
    /// mtty_read / mtty_write: the access is cut into 4-, 2- and 1-byte pieces by alignment, and each piece is
    /// one register access at its own offset that uses (or fills) only the piece's first byte; the simulator
    /// answers 0 in a read piece's other bytes, which mtty.c leaves unset.
    /// </summary>
    private long MttyAccess(int port, long register, Span<byte> buffer, bool write)
    {
        var ports = _device.MttyPorts!;
        int done = 0;
        while (done < buffer.Length)
        {
            long at = register + done;
            int left = buffer.Length - done;
            int piece = left >= 4 && at % 4 == 0 ? 4 : left >= 2 && at % 2 == 0 ? 2 : 1;
            if (write)
            {
                ports.Write(port, at, buffer[done]);
            }
            else
            {
                buffer.Slice(done, piece).Clear();
                buffer[done] = ports.Read(port, at);
            }
            done += piece;
        }
        return done;
    }

    /// <summary>Finds what [offset, offset + length) of the fd reaches; clipped at the region's end as vfio_pci_rw does.</summary>
    private long Access(long offset, int length, out Span<byte> target, out bool v1, out long v1Offset)
    {
        target = default;
        v1 = false;
        v1Offset = 0;
        long index = offset >> OffsetShift, within = offset & OffsetMask;
        if (index >= NumRegions) return _device.IsMdev ? -Errno.EFAULT : -Errno.EINVAL;
        if (index >= VFIO_PCI_NUM_REGIONS)
        {
            v1 = true;
            v1Offset = within;
            return 0;
        }
        Span<byte> region;
        if (index == VFIO_PCI_CONFIG_REGION_INDEX) region = _config;
        else if (_device.IsMdev && index < 2 && (index == 0 || MttyPorts == 2)) region = _mttyBars[index];
        else if (!_device.IsMdev && index == VFIO_PCI_BAR0_REGION_INDEX) region = Bar0().Span;
        else return _device.IsMdev ? -Errno.EFAULT : -Errno.EINVAL; // mdev_access: -1 → EFAULT; vfio-pci: no such BAR
        if (within >= region.Length) return -Errno.EINVAL;
        target = region.Slice((int)within, (int)Math.Min(length, region.Length - within));
        return 0;
    }

    private NativeBuffer Bar0() => _bar0 ??= new NativeBuffer(Bar0Size);
}
