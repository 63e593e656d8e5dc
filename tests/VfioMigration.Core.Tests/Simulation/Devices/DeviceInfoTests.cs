using System;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>VFIO_DEVICE_GET_INFO, GET_REGION_INFO, GET_IRQ_INFO and RESET as vfio-pci and mtty answer them.</summary>
public class DeviceInfoTests
{
    private static readonly uint GetInfo = VfioIoctl.VFIO_DEVICE_GET_INFO.Number;
    private static readonly uint GetRegionInfo = VfioIoctl.VFIO_DEVICE_GET_REGION_INFO.Number;
    private static readonly uint GetIrqInfo = VfioIoctl.VFIO_DEVICE_GET_IRQ_INFO.Number;
    private static readonly uint Reset = VfioIoctl.VFIO_DEVICE_RESET.Number;

    [Theory]
    [InlineData("0000:00:02.0", 0x2u)] // edu: no reset (kernel-interface.md lab 7.1)
    [InlineData("0000:00:03.0", 0x3u)] // e1000e: RESET|PCI (kernel-interface.md lab 7.2)
    [InlineData(SimTopologies.LabMttyUuid, 0x2u)] // mtty (kernel-interface.md lab 7.3)
    public void GetInfoReportsTheLabsFlagsNineRegionsAndFiveIrqs(string device, uint flags)
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), device);
        var info = StructBytes.Buffer(new vfio_device_info { argsz = 20 });
        Assert.Equal(0, h.Ioctl(GetInfo, info));
        var got = StructBytes.Read<vfio_device_info>(info);
        Assert.Equal((flags, 9u, 5u), (got.flags, got.num_regions, got.num_irqs));
    }

    [Fact]
    public void GetInfoRefusesAnArgszBelowSixteenAndFaultsOnAShortBuffer()
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        Assert.Equal(-Errno.EINVAL, h.Ioctl(GetInfo, StructBytes.Buffer(new vfio_device_info { argsz = 15 })));
        Assert.Equal(-Errno.EFAULT, h.Ioctl(GetInfo, new byte[12]));
    }

    [Fact]
    public void VfioPciCopiesBackWhatArgszCoversWhileMttyCopiesSixteenBytes()
    {
        using var edu = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        var small = new byte[24];
        small.AsSpan().Fill(0xAA);
        BitConverter.TryWriteBytes(small, 16u);
        Assert.Equal(0, edu.Ioctl(GetInfo, small));
        Assert.Equal(0xAA, small[16]); // beyond argsz: untouched
        var full = new byte[24];
        full.AsSpan().Fill(0xAA);
        BitConverter.TryWriteBytes(full, 24u);
        Assert.Equal(0, edu.Ioctl(GetInfo, full));
        Assert.Equal(0u, BitConverter.ToUInt32(full, 16)); // cap_offset written as 0

        using var mtty = DeviceHarness.Mtty();
        var m = new byte[24];
        m.AsSpan().Fill(0xAA);
        BitConverter.TryWriteBytes(m, 24u);
        Assert.Equal(0, mtty.Ioctl(GetInfo, m));
        Assert.Equal(0xAA, m[16]);
    }

    [Fact]
    public void AV1DeviceHasATenthRegion()
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.LabWith(SimDeviceExamples.V1Device()), "0000:00:05.0");
        var info = StructBytes.Buffer(new vfio_device_info { argsz = 20 });
        Assert.Equal(0, h.Ioctl(GetInfo, info));
        Assert.Equal(10u, StructBytes.Read<vfio_device_info>(info).num_regions);
    }

    private static (int Rc, vfio_region_info Info, byte[] Buffer) Region(DeviceHarness h, uint index, uint argsz = 32, int length = 32)
    {
        var buffer = new byte[Math.Max(length, 0)];
        if (buffer.Length >= 32) StructBytes.Write(buffer, new vfio_region_info { argsz = argsz, index = index });
        int rc = h.Ioctl(GetRegionInfo, buffer);
        return (rc, buffer.Length >= 32 ? StructBytes.Read<vfio_region_info>(buffer) : default, buffer);
    }

    [Theory]
    [InlineData("0000:00:02.0", 256ul)]  // edu is conventional PCI
    [InlineData("0000:00:03.0", 4096ul)] // e1000e is PCI Express
    public void ConfigSpaceIsReadWriteWithThePciOrPcieSize(string device, ulong size)
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), device);
        var (rc, info, _) = Region(h, VFIO_PCI_CONFIG_REGION_INDEX);
        Assert.Equal(0, rc);
        Assert.Equal((size, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, 7ul << 40), (info.size, info.flags, info.offset));
    }

    [Fact]
    public void APciDeviceHasAnMmappableBar0NoOtherBarsNoRomAndNoVga()
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        var bar0 = Region(h, 0);
        Assert.Equal((0, 0x100000ul, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP, 0ul),
            (bar0.Rc, bar0.Info.size, bar0.Info.flags, bar0.Info.offset));
        for (uint i = 1; i <= VFIO_PCI_ROM_REGION_INDEX; i++)
        {
            var r = Region(h, i);
            Assert.Equal((0, 0ul, 0u, (ulong)i << 40), (r.Rc, r.Info.size, r.Info.flags, r.Info.offset));
        }
        Assert.Equal(-Errno.EINVAL, Region(h, VFIO_PCI_VGA_REGION_INDEX).Rc);
        Assert.Equal(-Errno.EINVAL, Region(h, 9).Rc);
        Assert.Equal(-Errno.EINVAL, Region(h, 0, argsz: 31).Rc);
        Assert.Equal(-Errno.EFAULT, h.Ioctl(GetRegionInfo, new byte[16]));
    }

    [Fact]
    public void MttyRegionsAreItsConfigSpaceAndTwoIoBars()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(0xfful, Region(h, VFIO_PCI_CONFIG_REGION_INDEX).Info.size);
        Assert.Equal(8ul, Region(h, 0).Info.size);
        Assert.Equal(8ul, Region(h, 1).Info.size); // mtty-2: two ports
        var vga = Region(h, VFIO_PCI_VGA_REGION_INDEX);
        Assert.Equal((0, 0ul, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE), (vga.Rc, vga.Info.size, vga.Info.flags));
        Assert.Equal(-Errno.EINVAL, Region(h, 9).Rc);
    }

    [Fact]
    public void TheV1RegionAsksForMoreRoomThenDescribesItsTypeAndSparseMmapArea()
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.LabWith(SimDeviceExamples.V1Device()), "0000:00:05.0");
        var first = Region(h, 9);
        Assert.Equal(0, first.Rc);
        const uint all = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
        Assert.Equal((all, 80u, 0u), (first.Info.flags, first.Info.argsz, first.Info.cap_offset));

        var (rc, info, buffer) = Region(h, 9, argsz: first.Info.argsz, length: (int)first.Info.argsz);
        Assert.Equal(0, rc);
        Assert.Equal((all, 32u, 9ul << 40, 0x2000ul), (info.flags, info.cap_offset, info.offset, info.size));
        var type = StructBytes.Read<vfio_region_info_cap_type>(buffer, 32);
        Assert.Equal((VFIO_REGION_INFO_CAP_TYPE, (ushort)1, 48u, 3u, 1u), (type.header.id, type.header.version, type.header.next, type.type, type.subtype));
        var sparse = StructBytes.Read<vfio_region_info_cap_sparse_mmap>(buffer, 48);
        Assert.Equal((VFIO_REGION_INFO_CAP_SPARSE_MMAP, 0u, 1u), (sparse.header.id, sparse.header.next, sparse.nr_areas));
        var area = StructBytes.Read<vfio_region_sparse_mmap_area>(buffer, 64);
        Assert.Equal((0x1000ul, 0x1000ul), (area.offset, area.size));
    }

    private static (int Rc, vfio_irq_info Info) Irq(DeviceHarness h, uint index, uint argsz = 16)
    {
        var buffer = StructBytes.Buffer(new vfio_irq_info { argsz = argsz, index = index });
        int rc = h.Ioctl(GetIrqInfo, buffer);
        return (rc, StructBytes.Read<vfio_irq_info>(buffer));
    }

    [Fact]
    public void VfioPciDescribesItsFiveInterruptIndexes()
    {
        using var edu = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1u), Flat(Irq(edu, VFIO_PCI_INTX_IRQ_INDEX)));
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1u), Flat(Irq(edu, VFIO_PCI_MSI_IRQ_INDEX)));
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 0u), Flat(Irq(edu, VFIO_PCI_MSIX_IRQ_INDEX)));
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1u), Flat(Irq(edu, VFIO_PCI_REQ_IRQ_INDEX)));
        // The ERR interrupt exists for PCI Express functions only: not for edu, for e1000e.
        Assert.Equal(-Errno.EINVAL, Irq(edu, VFIO_PCI_ERR_IRQ_INDEX).Rc);
        using var e1000e = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:03.0");
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1u), Flat(Irq(e1000e, VFIO_PCI_ERR_IRQ_INDEX)));
        Assert.Equal(-Errno.EINVAL, Irq(edu, 5).Rc);
        Assert.Equal(-Errno.EINVAL, Irq(edu, 0, argsz: 15).Rc);
    }

    [Fact]
    public void MttyKnowsInterruptIndexesOnlyAfterGetInfoAndOnlyIntxAndMsi()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, Irq(h, VFIO_PCI_INTX_IRQ_INDEX).Rc); // dev_info.num_irqs is 0 until GET_INFO
        Assert.Equal(0, h.Ioctl(GetInfo, StructBytes.Buffer(new vfio_device_info { argsz = 16 })));
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1u), Flat(Irq(h, VFIO_PCI_INTX_IRQ_INDEX)));
        Assert.Equal((0, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1u), Flat(Irq(h, VFIO_PCI_MSI_IRQ_INDEX)));
        Assert.Equal(-Errno.EINVAL, Irq(h, VFIO_PCI_MSIX_IRQ_INDEX).Rc);
        Assert.Equal(-Errno.EINVAL, Irq(h, VFIO_PCI_REQ_IRQ_INDEX).Rc);
    }

    private static (int, uint, uint) Flat((int Rc, vfio_irq_info Info) r) => (r.Rc, r.Info.flags, r.Info.count);

    [Fact]
    public void ResetIsEinvalWithoutAResetMethodAndWorksWithOne()
    {
        using var edu = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        Assert.Equal(-Errno.EINVAL, edu.Ioctl(Reset, Span<byte>.Empty));
        using var e1000e = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:03.0");
        Assert.Equal(0, e1000e.Ioctl(Reset, Span<byte>.Empty));
        Assert.Equal(0, e1000e.Kernel.Ioctl(e1000e.Device, Reset, 0UL));
    }

    [Fact]
    public void MttyResetsWithoutAdvertisingResetAndEndsItsDataSessions()
    {
        using var h = DeviceHarness.Mtty();
        int fd = h.MoveTo(VFIO_DEVICE_STATE_PRE_COPY);
        Assert.Equal(0, h.Ioctl(Reset, Span<byte>.Empty));
        Assert.Equal(VFIO_DEVICE_STATE_RUNNING, h.GetState());
        Assert.Equal(-Errno.ENODEV, h.Kernel.Read(fd, new byte[16]));
    }

    [Fact]
    public void PreadAndPwriteReachConfigSpaceWhoseIdentityIsReadOnly()
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        long config = 7L << 40;
        var id = new byte[4];
        Assert.Equal(4, h.Kernel.Pread(h.Device, id, config));
        Assert.Equal(new byte[] { 0x34, 0x12, 0xe8, 0x11 }, id);
        Assert.Equal(4, h.Kernel.Pwrite(h.Device, new byte[] { 1, 2, 3, 4 }, config));
        Assert.Equal(4, h.Kernel.Pread(h.Device, id, config));
        Assert.Equal(new byte[] { 0x34, 0x12, 0xe8, 0x11 }, id);
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, id, config + 256));
        Assert.Equal(-Errno.EINVAL, h.Kernel.Pread(h.Device, id, 8L << 40));
    }

    [Fact]
    public void Bar0MmapSharesTheBytesOfPreadAndRefusesPrivateOrOversizedMaps()
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        nint address = h.Kernel.Mmap(4096, 0, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, h.Device);
        Assert.True(address > 0);
        Assert.Equal(4, h.Kernel.Pwrite(h.Device, new byte[] { 9, 8, 7, 6 }, 0x10));
        Assert.Equal(new byte[] { 9, 8, 7, 6 }, UserMemory.View(address + 0x10, 4).ToArray());
        Assert.Equal(-Errno.EINVAL, (int)h.Kernel.Mmap(4096, 0, Libc.PROT_READ, Libc.MAP_PRIVATE, h.Device));
        Assert.Equal(-Errno.EINVAL, (int)h.Kernel.Mmap(0x200000, 0, Libc.PROT_READ, Libc.MAP_SHARED, h.Device));
        Assert.Equal(-Errno.EINVAL, (int)h.Kernel.Mmap(4096, 7L << 40, Libc.PROT_READ, Libc.MAP_SHARED, h.Device));
        using var mtty = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, (int)mtty.Kernel.Mmap(4096, 0, Libc.PROT_READ, Libc.MAP_SHARED, mtty.Device));
    }
}
