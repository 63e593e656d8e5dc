using System;
using System.Buffers.Binary;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Tests.Conformance;
using VfioMigration.Core.Vfio;
using Xunit;
using static VfioMigration.Core.Native.IommufdConstants;

namespace VfioMigration.Core.Tests.Simulation.Iommufd;

/// <summary>The simulated iommufd's rules, each as the kernel function named in the test states it.</summary>
public sealed class IommufdRulesTests : IDisposable
{
    private readonly SimulatedKernel _kernel;
    private readonly int _iommufd;
    // Guest memory from mmap, as a VMM's: page aligned (iommufd refuses memory that starts inside a page).
    private readonly nint _memory;

    public IommufdRulesTests()
    {
        _kernel = new SimulatedKernel(IommufdConformanceTests.DirtyHost());
        _kernel.Clock.UseManualTime();
        _iommufd = _kernel.Open(IommuPath, Libc.O_RDWR);
        _memory = _kernel.Mmap((nint)(4L << 20), 0, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1);
    }

    public void Dispose() => _kernel.Munmap(_memory, (nint)(4L << 20));

    private int Ioctl<T>(int fd, IoctlRequest r, ref T value) where T : unmanaged
    {
        var b = StructBytes.Buffer(value);
        int rc = _kernel.Ioctl(fd, r.Number, b);
        value = StructBytes.Read<T>(b);
        return rc;
    }

    private uint Ioas()
    {
        var a = new iommu_ioas_alloc { size = 12 };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_ALLOC, ref a));
        return a.out_ioas_id;
    }

    private int Map(uint ioas, ulong iova, ulong length, uint flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
    {
        var m = new iommu_ioas_map { size = 40, flags = flags, ioas_id = ioas, user_va = (ulong)_memory, length = length, iova = iova };
        return Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_MAP, ref m);
    }

    /// <summary>Binds the edu through its cdev: (cdev fd, dev id).</summary>
    private (int Fd, uint DevId) BindEdu()
    {
        int fd = _kernel.Open("/dev/vfio/devices/vfio0", Libc.O_RDWR);
        var bind = new vfio_device_bind_iommufd { argsz = 16, iommufd = _iommufd };
        Assert.Equal(0, Ioctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, ref bind));
        return (fd, bind.out_devid);
    }

    [Fact]
    public void BelowTheMinimumSizeIsEinvalAndNonZeroBytesPastTheStructAreE2big()
    {
        // iommufd_fops_ioctl: user_size < min_size; copy_struct_from_user.
        Assert.Equal(-Errno.EINVAL, _kernel.Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_ALLOC.Number, BitConverter.GetBytes(8u).AsSpan()));
        var big = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(big, 16);
        big[15] = 1;
        Assert.Equal(-Errno.E2BIG, _kernel.Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_ALLOC.Number, big));
        big[15] = 0;
        Assert.Equal(0, _kernel.Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_ALLOC.Number, big));
        Assert.Equal(-Errno.ENOTTY, _kernel.Ioctl(_iommufd, 0x3B99, big));
    }

    [Fact]
    public void MapRefusesOverlapsWithEexistAndReservedRangesWithEinval()
    {
        uint ioas = Ioas();
        var (fd, devId) = BindEdu();
        var attach = new vfio_device_attach_iommufd_pt { argsz = 12, pt_id = ioas };
        Assert.Equal(0, Ioctl(fd, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT, ref attach));
        Assert.Equal(0, Map(ioas, 0x100000, 0x200000));
        Assert.Equal(-Errno.EEXIST, Map(ioas, 0x200000, 0x200000));              // iopt_check_iova: an area is there
        Assert.Equal(-Errno.EINVAL, Map(ioas, 0xfee00000, 0x1000));              // the MSI window is reserved
        Assert.Equal(-Errno.EINVAL, Map(ioas, 0x400800, 0x1000));                // not aligned to iova_alignment (4 KiB)
        Assert.Equal(-Errno.EINVAL, Map(ioas, 0x400000, 0x1000, IOMMU_IOAS_MAP_FIXED_IOVA)); // neither readable nor writeable
        Assert.Equal(-Errno.EOPNOTSUPP, Map(ioas, 0x400000, 0x1000, 0x80 | IOMMU_IOAS_MAP_READABLE));
        Assert.Equal(-Errno.ENOENT, Map(ioas + 100, 0x400000, 0x1000));
        _ = devId;
    }

    [Fact]
    public void UnmapTakesWholeAreasOnlyAndNothingIsEnoent()
    {
        uint ioas = Ioas();
        Assert.Equal(0, Map(ioas, 0x100000, 0x200000));
        var half = new iommu_ioas_unmap { size = 24, ioas_id = ioas, iova = 0x100000, length = 0x100000 };
        Assert.Equal(-Errno.ENOENT, Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_UNMAP, ref half));   // iopt_unmap_iova_range: no splitting
        var all = new iommu_ioas_unmap { size = 24, ioas_id = ioas, iova = 0, length = ulong.MaxValue };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_UNMAP, ref all));
        Assert.Equal(0x200000UL, all.length);
        var none = new iommu_ioas_unmap { size = 24, ioas_id = ioas, iova = 0x100000, length = 0x200000 };
        Assert.Equal(-Errno.ENOENT, Ioctl(_iommufd, IommufdIoctl.IOMMU_IOAS_UNMAP, ref none));
    }

    [Fact]
    public void BindIsRefusedWhileTheGroupIsOpenAndWithAFdThatIsNoIommufd()
    {
        int group = _kernel.Open("/dev/vfio/2", Libc.O_RDWR);
        int fd = _kernel.Open("/dev/vfio/devices/vfio0", Libc.O_RDWR);
        var bind = new vfio_device_bind_iommufd { argsz = 16, iommufd = _iommufd };
        Assert.Equal(-Errno.EBUSY, Ioctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, ref bind));     // vfio_device_block_group
        _kernel.Close(group);
        var wrong = new vfio_device_bind_iommufd { argsz = 16, iommufd = fd };
        Assert.Equal(-Errno.EBADFD, Ioctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, ref wrong));   // iommufd_ctx_from_fd
        Assert.Equal(0, Ioctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, ref bind));
        Assert.Equal(-Errno.EINVAL, Ioctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD, ref bind));    // bound once
        Assert.Equal(-Errno.EBUSY, _kernel.Open("/dev/vfio/2", Libc.O_RDWR));                    // the group is blocked now
    }

    [Fact]
    public void AnIoasInUseCannotBeDestroyed()
    {
        uint ioas = Ioas();
        var (_, devId) = BindEdu();
        var alloc = new iommu_hwpt_alloc { size = 48, dev_id = devId, pt_id = ioas };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_ALLOC, ref alloc));
        var destroy = new iommu_destroy { size = 8, id = ioas };
        Assert.Equal(-Errno.EBUSY, Ioctl(_iommufd, IommufdIoctl.IOMMU_DESTROY, ref destroy));
        var hwpt = new iommu_destroy { size = 8, id = alloc.out_hwpt_id };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_DESTROY, ref hwpt));
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_DESTROY, ref destroy));
        Assert.Equal(-Errno.ENOENT, Ioctl(_iommufd, IommufdIoctl.IOMMU_DESTROY, ref destroy));
    }

    [Fact]
    public void TheBitmapCopyOutOnlySetsBitsAndAHoleInTheRangeIsEinval()
    {
        uint ioas = Ioas();
        var (fd, devId) = BindEdu();
        var alloc = new iommu_hwpt_alloc { size = 48, flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dev_id = devId, pt_id = ioas };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_ALLOC, ref alloc));
        var attach = new vfio_device_attach_iommufd_pt { argsz = 12, pt_id = alloc.out_hwpt_id };
        Assert.Equal(0, Ioctl(fd, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT, ref attach));
        Assert.Equal(0, Map(ioas, 0x100000, 0x100000));
        Assert.Equal(0, Map(ioas, 0x300000, 0x100000));
        var set = new iommu_hwpt_set_dirty_tracking { size = 16, flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE, hwpt_id = alloc.out_hwpt_id };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_SET_DIRTY_TRACKING, ref set));
        using var bitmap = new NativeBuffer(1024);
        bitmap.Span.Fill(0xff);
        var get = new iommu_hwpt_get_dirty_bitmap { size = 48, hwpt_id = alloc.out_hwpt_id, iova = 0x100000, length = 0x100000, page_size = 4096, data = bitmap.Address };
        Assert.Equal(0, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, ref get));
        Assert.Equal(-1, bitmap.Span.IndexOfAnyExcept((byte)0xff));                 // nothing was cleared in the caller's bitmap
        var hole = get with { length = 0x300000 };
        Assert.Equal(-Errno.EINVAL, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, ref hole));
        var zero = get with { page_size = 0 };
        Assert.Equal(-Errno.EINVAL, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, ref zero));
        var wraps = get with { iova = ulong.MaxValue - 0xfff, length = 0x2000 };
        Assert.Equal(-Errno.EOVERFLOW, Ioctl(_iommufd, IommufdIoctl.IOMMU_HWPT_GET_DIRTY_BITMAP, ref wraps));
    }

    [Fact]
    public void AVtdWithFirstStageOnlyRefusesUserDomainsAndTheContainerFallsBackToTheKernelsChoice()
    {
        // QEMU 10's intel-iommu with x-flts=on: SMTS|FLTS, no SLTS (docs/iommufd.md section 3).
        var c = SimTopologies.LabIommufd();
        c.VtdEcap = 0x880000f00f4a;
        var kernel = new SimulatedKernel(c);
        int ictx = kernel.Open(IommuPath, Libc.O_RDWR);
        int fd = kernel.Open("/dev/vfio/devices/vfio0", Libc.O_RDWR);
        var bind = StructBytes.Buffer(new vfio_device_bind_iommufd { argsz = 16, iommufd = ictx });
        Assert.Equal(0, kernel.Ioctl(fd, VfioIoctl.VFIO_DEVICE_BIND_IOMMUFD.Number, bind));
        var ioas = StructBytes.Buffer(new iommu_ioas_alloc { size = 12 });
        kernel.Ioctl(ictx, IommufdIoctl.IOMMU_IOAS_ALLOC.Number, ioas);
        var alloc = StructBytes.Buffer(new iommu_hwpt_alloc { size = 48, dev_id = StructBytes.Read<vfio_device_bind_iommufd>(bind).out_devid, pt_id = StructBytes.Read<iommu_ioas_alloc>(ioas).out_ioas_id });
        Assert.Equal(0, kernel.Ioctl(ictx, IommufdIoctl.IOMMU_HWPT_ALLOC.Number, alloc));
        var attach = StructBytes.Buffer(new vfio_device_attach_iommufd_pt { argsz = 12, pt_id = StructBytes.Read<iommu_hwpt_alloc>(alloc).out_hwpt_id });
        Assert.Equal(-Errno.EINVAL, kernel.Ioctl(fd, VfioIoctl.VFIO_DEVICE_ATTACH_IOMMUFD_PT.Number, attach));
        kernel.Close(fd);

        using var container = VfioContainer.Open(new VfioHost(kernel), backend: VfioBackend.Iommufd);
        container.Attach(2);
        container.SetIommu();
        Assert.Equal(container.BoundDevices[0].AttachedTo, container.HwptId);
        Assert.NotEqual(0u, container.HwptId);
    }
}
