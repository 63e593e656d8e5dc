using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Vfio;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.Kernel;

/// <summary>
/// Capability chains and the argsz negotiation of info ioctls, on byte-for-byte copies of what Linux
/// answered in the lab (kernel-interface.md lab 7.1, 7.3, 7.5, 9) and on chains a broken kernel could answer.
/// </summary>
public class InfoCapabilitiesTests
{
    private const ulong VtdPageSizes = 0x40201000; // 4K|2M|1G with a VT-d domain
    private const ulong MdevPageSizes = 0xfffffffffffff000; // PAGE_MASK for an mdev-only container

    private static readonly vfio_iova_range[] LabRanges =
    {
        new() { start = 0, end = 0xfedfffff },
        new() { start = 0xfef00000, end = 0x7fffffffff },
    };

    // ---- the lab's answers -------------------------------------------------------------------

    /// <summary>6.12, IOMMU-backed: argsz 120, MIGRATION @24 → DMA_AVAIL @56 (padded to 16) → IOVA_RANGE @72.</summary>
    private static byte[] Linux612IommuBacked() => Type1Answer(VtdPageSizes, dmaAvailNext: 72, iovaAt: 72);

    /// <summary>6.1, IOMMU-backed: argsz 116, DMA_AVAIL unpadded, so IOVA_RANGE starts at 68 (not 8-aligned).</summary>
    private static byte[] Linux61IommuBacked() => Type1Answer(VtdPageSizes, dmaAvailNext: 68, iovaAt: 68);

    /// <summary>6.12, mdev-only: argsz 72, no IOVA_RANGE.</summary>
    private static byte[] Linux612MdevOnly() => Type1Answer(MdevPageSizes, dmaAvailNext: 0, iovaAt: 0, size: 72);

    private static byte[] Type1Answer(ulong pageSizes, uint dmaAvailNext, int iovaAt, int size = 0)
    {
        if (size == 0) size = iovaAt + 16 + 16 * LabRanges.Length;
        var b = new byte[size];
        StructBytes.Write(b, new vfio_iommu_type1_info
        {
            argsz = (uint)size,
            flags = VfioConstants.VFIO_IOMMU_INFO_PGSIZES | VfioConstants.VFIO_IOMMU_INFO_CAPS,
            iova_pgsizes = pageSizes,
            cap_offset = 24,
        });
        StructBytes.Write(b, new vfio_iommu_type1_info_cap_migration
        {
            header = new vfio_info_cap_header { id = VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version = 1, next = 56 },
            flags = 0,
            pgsize_bitmap = 0x1000,
            max_dirty_bitmap_size = 268435456,
        }, 24);
        StructBytes.Write(b, new vfio_iommu_type1_info_dma_avail
        {
            header = new vfio_info_cap_header { id = VfioConstants.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version = 1, next = dmaAvailNext },
            avail = 65535,
        }, 56);
        if (iovaAt != 0)
        {
            StructBytes.Write(b, new vfio_iommu_type1_info_cap_iova_range
            {
                header = new vfio_info_cap_header { id = VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version = 1, next = 0 },
                nr_iovas = (uint)LabRanges.Length,
            }, iovaAt);
            for (int i = 0; i < LabRanges.Length; i++) StructBytes.Write(b, LabRanges[i], iovaAt + 16 + 16 * i);
        }
        return b;
    }

    // ---- VFIO_IOMMU_GET_INFO through the host ------------------------------------------------

    [Fact]
    public void Linux612ChainIsReadAfterGrowingArgszFrom24To120()
    {
        var kernel = AnsweringKernel.Type1(Linux612IommuBacked());
        var (host, container) = Open(kernel);

        var answer = InfoQuery.IommuInfo(host, container);

        Assert.Equal(new uint[] { 24, 120 }, kernel.ArgszSeen);
        Assert.Equal(2, answer.Calls);
        Assert.Equal(120u, answer.Info.argsz);
        Assert.Equal(VtdPageSizes, answer.Info.iova_pgsizes);
        Assert.Equal(24u, answer.Info.cap_offset);
        Assert.Equal(new[] { new InfoCapability(2, 1, 24), new InfoCapability(3, 1, 56), new InfoCapability(1, 1, 72) }, answer.Capabilities.Entries);
        var migration = answer.Capabilities.Migration!.Value;
        Assert.Equal(0u, migration.flags);
        Assert.Equal(0x1000UL, migration.pgsize_bitmap);
        Assert.Equal(268435456UL, migration.max_dirty_bitmap_size);
        Assert.Equal(65535u, answer.Capabilities.DmaAvail);
        Assert.Equal(LabRanges, answer.Capabilities.IovaRanges);
    }

    [Fact]
    public void Linux61IovaRangeAtTheUnalignedOffset68IsReadIntact()
    {
        var kernel = AnsweringKernel.Type1(Linux61IommuBacked());
        var (host, container) = Open(kernel);

        var answer = InfoQuery.IommuInfo(host, container);

        Assert.Equal(new uint[] { 24, 116 }, kernel.ArgszSeen);
        Assert.Equal(new[] { 24, 56, 68 }, answer.Capabilities.Entries.Select(e => e.Offset));
        Assert.Equal(LabRanges, answer.Capabilities.IovaRanges);
        Assert.Equal(65535u, answer.Capabilities.DmaAvail);
    }

    [Fact]
    public void MdevOnlyContainerHasMigrationAndDmaAvailButNoIovaRange()
    {
        var kernel = AnsweringKernel.Type1(Linux612MdevOnly());
        var (host, container) = Open(kernel);

        var answer = InfoQuery.IommuInfo(host, container);

        Assert.Equal(new uint[] { 24, 72 }, kernel.ArgszSeen);
        Assert.Equal(MdevPageSizes, answer.Info.iova_pgsizes);
        Assert.Equal(new ushort[] { 2, 3 }, answer.Capabilities.Entries.Select(e => e.Id));
        Assert.Null(answer.Capabilities.IovaRanges);
        Assert.False(answer.Capabilities.Has(VfioConstants.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE));
        Assert.Equal(0x1000UL, answer.Capabilities.Migration!.Value.pgsize_bitmap);
    }

    [Fact]
    public void AnAnswerWithoutTheCapsFlagIsNotGrownAndHasNoChain()
    {
        var answer = Linux612IommuBacked();
        StructBytes.Write(answer, VfioConstants.VFIO_IOMMU_INFO_PGSIZES, 4);
        var kernel = AnsweringKernel.Type1(answer);
        var (host, container) = Open(kernel);

        var result = InfoQuery.IommuInfo(host, container);

        Assert.Equal(new uint[] { 24 }, kernel.ArgszSeen);
        Assert.Empty(result.Capabilities.Entries);
        Assert.Null(result.Capabilities.Migration);
    }

    [Fact]
    public void AKernelThatKeepsAskingForMoreIsStoppedAfterFourCalls()
    {
        var kernel = new AnsweringKernel((request, arg) =>
        {
            uint argsz = StructBytes.Read<uint>(arg);
            StructBytes.Write(arg, argsz + 8);
            StructBytes.Write(arg, VfioConstants.VFIO_IOMMU_INFO_CAPS, 4);
            return 0;
        });
        var (host, container) = Open(kernel);

        var e = Assert.Throws<VfioCapabilityChainException>(() => InfoQuery.IommuInfo(host, container));

        Assert.Equal(InfoQuery.MaxCalls, kernel.ArgszSeen.Count);
        Assert.Equal("VFIO_IOMMU_GET_INFO", e.Operation);
        Assert.Contains("after 4 calls", e.Message);
    }

    [Fact]
    public void AKernelAskingForMoreThan64KiBIsRefusedWithoutAllocatingIt()
    {
        var kernel = new AnsweringKernel((request, arg) =>
        {
            StructBytes.Write(arg, 1u << 20);
            StructBytes.Write(arg, VfioConstants.VFIO_IOMMU_INFO_CAPS, 4);
            return 0;
        });
        var (host, container) = Open(kernel);

        var e = Assert.Throws<VfioCapabilityChainException>(() => InfoQuery.IommuInfo(host, container));

        Assert.Single(kernel.ArgszSeen);
        Assert.Contains("argsz 1048576", e.Message);
        Assert.Null(e.Offset);
    }

    [Fact]
    public void AFailingInfoIoctlIsTheModulesNativeExceptionNamingIt()
    {
        var kernel = new AnsweringKernel((request, arg) => -Errno.EINVAL);
        var (host, container) = Open(kernel);

        var e = Assert.Throws<VfioNativeException>(() => InfoQuery.IommuInfo(host, container));

        Assert.Equal("VFIO_IOMMU_GET_INFO", e.Operation);
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [Fact]
    public void ABrokenChainFromTheKernelNamesTheIoctlAndTheOffset()
    {
        var answer = Linux61IommuBacked();
        SetNext(answer, 56, 24);
        var (host, container) = Open(AnsweringKernel.Type1(answer));

        var e = Assert.Throws<VfioCapabilityChainException>(() => InfoQuery.IommuInfo(host, container));

        Assert.Equal("VFIO_IOMMU_GET_INFO", e.Operation);
        Assert.Equal(56, e.Offset);
        Assert.StartsWith("VFIO_IOMMU_GET_INFO: the capability chain is broken at offset 56", e.Message);
    }

    // ---- broken chains ---------------------------------------------------------------------

    [Fact]
    public void ANextOffsetPointingBackwardsIsAnError()
    {
        var b = Linux61IommuBacked();
        SetNext(b, 56, 24);
        var e = ParseFails(b);
        Assert.Equal(56, e.Offset);
        Assert.Equal("next offset 24 does not move forward", e.Reason);
    }

    [Fact]
    public void ANextOffsetPointingToItselfIsAnErrorNotALoop()
    {
        var b = Linux61IommuBacked();
        SetNext(b, 56, 56);
        var e = ParseFails(b);
        Assert.Equal(56, e.Offset);
        Assert.Contains("points to the capability itself", e.Reason);
    }

    [Fact]
    public void ANextOffsetPastTheEndOfTheBufferIsAnError()
    {
        var b = Linux61IommuBacked();
        SetNext(b, 56, 200);
        var e = ParseFails(b);
        Assert.Equal(200, e.Offset);
        Assert.Contains("does not fit in the 116-byte buffer", e.Reason);
    }

    [Fact]
    public void ANextOffsetInsideTheCurrentCapabilityIsAnError()
    {
        var b = Linux61IommuBacked();
        SetNext(b, 24, 40); // MIGRATION is 32 bytes: 24..56
        var e = ParseFails(b);
        Assert.Equal(24, e.Offset);
        Assert.Contains("starts inside capability MIGRATION (id 2), which ends at 56", e.Reason);
    }

    [Fact]
    public void ACapabilityWhoseRangesRunPastTheBufferIsTruncated()
    {
        var b = Linux61IommuBacked();
        StructBytes.Write(b, 3u, 68 + 8); // nr_iovas = 3: 16 + 48 bytes from 68 is 132 > 116
        var e = ParseFails(b);
        Assert.Equal(68, e.Offset);
        Assert.Contains("IOVA_RANGE (id 1) declares 64 bytes, past the end of the 116-byte buffer", e.Reason);
    }

    [Fact]
    public void AHeaderCutOffByTheEndOfTheBufferIsTruncated()
    {
        var b = Linux61IommuBacked().AsSpan(0, 60).ToArray(); // DMA_AVAIL's header would end at 64
        var e = ParseFails(b);
        Assert.Equal(56, e.Offset);
        Assert.Contains("header (8 bytes) does not fit in the 60-byte buffer", e.Reason);
    }

    [Fact]
    public void AFixedCapabilityCutOffByTheEndOfTheBufferIsTruncated()
    {
        var b = Linux61IommuBacked().AsSpan(0, 64).ToArray(); // DMA_AVAIL (12 bytes) would end at 68
        var e = ParseFails(b);
        Assert.Equal(56, e.Offset);
        Assert.Contains("DMA_AVAIL (id 3) declares 12 bytes", e.Reason);
    }

    [Fact]
    public void AFirstCapabilityInsideTheFixedStructIsAnError()
    {
        var e = Assert.Throws<VfioCapabilityChainException>(() =>
            InfoCapabilities.Parse(Linux61IommuBacked(), 8, CapabilityNamespace.IommuType1Info, StructBytes.SizeOf<vfio_iommu_type1_info>()));
        Assert.Equal(8, e.Offset);
        Assert.Contains("overlaps the 24-byte info struct", e.Reason);
    }

    [Fact]
    public void CapOffsetZeroMeansNoCapabilities()
    {
        var caps = InfoCapabilities.Parse(Linux612IommuBacked(), 0, CapabilityNamespace.IommuType1Info, 24);
        Assert.Empty(caps.Entries);
        Assert.Null(caps.IovaRanges);
    }

    [Fact]
    public void AnUnknownCapabilityIsListedAndSkippedByItsNextOffset()
    {
        var b = Linux612IommuBacked();
        StructBytes.Write(b, (ushort)77, 56); // DMA_AVAIL's slot now holds an id this module does not know
        var caps = InfoCapabilities.Parse(b, 24, CapabilityNamespace.IommuType1Info, 24);
        Assert.Equal(new ushort[] { 2, 77, 1 }, caps.Entries.Select(e => e.Id));
        Assert.Null(caps.DmaAvail);
        Assert.Equal(LabRanges, caps.IovaRanges);
    }

    [Fact]
    public void ARegionAccessorOnAType1ChainIsAProgrammingError()
    {
        var caps = InfoCapabilities.Parse(Linux612IommuBacked(), 24, CapabilityNamespace.IommuType1Info, 24);
        var e = Assert.Throws<InvalidOperationException>(() => caps.SparseMmapAreas);
        Assert.Contains("VFIO_DEVICE_GET_REGION_INFO", e.Message);
    }

    // ---- region and device info -----------------------------------------------------------

    /// <summary>A v1 migration region (type 3 / subtype 1, kernel-interface.md a.4) at index 9 with a sparse-mmap data section.</summary>
    private static byte[] MigrationRegionAnswer()
    {
        var b = new byte[96];
        StructBytes.Write(b, new vfio_region_info
        {
            argsz = 96,
            flags = VfioConstants.VFIO_REGION_INFO_FLAG_READ | VfioConstants.VFIO_REGION_INFO_FLAG_WRITE
                    | VfioConstants.VFIO_REGION_INFO_FLAG_MMAP | VfioConstants.VFIO_REGION_INFO_FLAG_CAPS,
            index = 9,
            cap_offset = 32,
            size = 0x4000,
            offset = 9UL << 40,
        });
        StructBytes.Write(b, new vfio_region_info_cap_sparse_mmap
        {
            header = new vfio_info_cap_header { id = VfioConstants.VFIO_REGION_INFO_CAP_SPARSE_MMAP, version = 1, next = 80 },
            nr_areas = 2,
        }, 32);
        StructBytes.Write(b, new vfio_region_sparse_mmap_area { offset = 0x1000, size = 0x1000 }, 48);
        StructBytes.Write(b, new vfio_region_sparse_mmap_area { offset = 0x3000, size = 0x1000 }, 64);
        StructBytes.Write(b, new vfio_region_info_cap_type
        {
            header = new vfio_info_cap_header { id = VfioConstants.VFIO_REGION_INFO_CAP_TYPE, version = 1, next = 0 },
            type = VfioConstants.VFIO_REGION_TYPE_MIGRATION,
            subtype = VfioConstants.VFIO_REGION_SUBTYPE_MIGRATION,
        }, 80);
        return b;
    }

    [Fact]
    public void RegionInfoPassesTheIndexAndDecodesTypeAndSparseAreas()
    {
        var kernel = AnsweringKernel.Region(index: 9, MigrationRegionAnswer());
        var (host, device) = Open(kernel);

        var answer = InfoQuery.RegionInfo(host, device, 9);

        Assert.Equal(new uint[] { 32, 96 }, kernel.ArgszSeen);
        Assert.Equal(9u, answer.Info.index);
        Assert.Equal(9UL << 40, answer.Info.offset);
        Assert.Equal(0x4000UL, answer.Info.size);
        var type = answer.Capabilities.RegionType!.Value;
        Assert.Equal(VfioConstants.VFIO_REGION_TYPE_MIGRATION, type.type);
        Assert.Equal(VfioConstants.VFIO_REGION_SUBTYPE_MIGRATION, type.subtype);
        Assert.Equal(new ulong[] { 0x1000, 0x3000 }, answer.Capabilities.SparseMmapAreas!.Select(a => a.offset));
        Assert.All(answer.Capabilities.SparseMmapAreas!, a => Assert.Equal(0x1000UL, a.size));
        Assert.False(answer.Capabilities.MsixMappable);
    }

    [Fact]
    public void RegionInfoForAnotherIndexIsTheKernelsEinval()
    {
        var (host, device) = Open(AnsweringKernel.Region(index: 9, MigrationRegionAnswer()));
        var e = Assert.Throws<VfioNativeException>(() => InfoQuery.RegionInfo(host, device, 12));
        Assert.Equal("VFIO_DEVICE_GET_REGION_INFO", e.Operation);
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [Fact]
    public void DeviceInfoWithoutCapabilitiesTakesOneCall()
    {
        // kernel-interface.md lab 7.1: edu answers flags=0x2 (PCI) num_regions=9 num_irqs=5.
        var b = StructBytes.Buffer(new vfio_device_info { argsz = 20, flags = VfioConstants.VFIO_DEVICE_FLAGS_PCI, num_regions = 9, num_irqs = 5 });
        var kernel = AnsweringKernel.Device(b);
        var (host, device) = Open(kernel);

        var answer = InfoQuery.DeviceInfo(host, device);

        Assert.Equal(new uint[] { 20 }, kernel.ArgszSeen);
        Assert.Equal(1, answer.Calls);
        Assert.Equal(VfioConstants.VFIO_DEVICE_FLAGS_PCI, answer.Info.flags);
        Assert.Equal(9u, answer.Info.num_regions);
        Assert.Equal(5u, answer.Info.num_irqs);
        Assert.Empty(answer.Capabilities.Entries);
    }

    [Fact]
    public void DeviceInfoCapabilitiesAreListedButNotDecoded()
    {
        // A zPCI-style device: one capability (id 1, VFIO_DEVICE_INFO_CAP_ZPCI_BASE) after the 20-byte struct.
        var b = new byte[20 + 16];
        StructBytes.Write(b, new vfio_device_info
        {
            argsz = (uint)b.Length,
            flags = VfioConstants.VFIO_DEVICE_FLAGS_PCI | VfioConstants.VFIO_DEVICE_FLAGS_CAPS,
            num_regions = 9,
            num_irqs = 5,
            cap_offset = 20,
        });
        StructBytes.Write(b, new vfio_info_cap_header { id = 1, version = 1, next = 0 }, 20);
        var (host, device) = Open(AnsweringKernel.Device(b));

        var answer = InfoQuery.DeviceInfo(host, device);

        Assert.Equal(2, answer.Calls);
        Assert.Equal(new[] { new InfoCapability(1, 1, 20) }, answer.Capabilities.Entries);
        Assert.Throws<InvalidOperationException>(() => answer.Capabilities.IovaRanges);
    }

    // ---- helpers --------------------------------------------------------------------------

    private static void SetNext(byte[] buffer, int capabilityAt, uint next) => StructBytes.Write(buffer, next, capabilityAt + 4);

    private static VfioCapabilityChainException ParseFails(byte[] buffer) =>
        Assert.Throws<VfioCapabilityChainException>(() =>
            InfoCapabilities.Parse(buffer, StructBytes.Read<vfio_iommu_type1_info>(buffer).cap_offset, CapabilityNamespace.IommuType1Info, 24));

    private static (VfioHost Host, SafeFd Fd) Open(AnsweringKernel kernel)
    {
        var host = new VfioHost(kernel);
        return (host, host.Open("/dev/vfio/vfio"));
    }

    /// <summary>
    /// A kernel that answers one info ioctl from a byte buffer, the way drivers/vfio does: argsz below
    /// the minimum → EINVAL; argsz too small for the whole answer → the fixed part with argsz set to
    /// the size needed and cap_offset 0; otherwise the whole answer (argsz left as the caller's).
    /// </summary>
    private sealed class AnsweringKernel : IVfioKernel
    {
        private readonly Func<uint, Span<byte>, int> _answer;

        public AnsweringKernel(Func<uint, Span<byte>, int> answer) => _answer = answer;

        /// <summary>The argsz of every struct ioctl, in call order.</summary>
        public List<uint> ArgszSeen { get; } = new();

        public static AnsweringKernel Type1(byte[] answer) =>
            // vfio_iommu_type1_get_info: minsz = offsetofend(iova_pgsizes) = 16.
            InfoLike(VfioIoctl.VFIO_IOMMU_GET_INFO, answer, minsz: 16, InfoQueryKind.IommuType1);

        public static AnsweringKernel Device(byte[] answer) =>
            // vfio_pci_ioctl_get_info: minsz = offsetofend(num_irqs) = 16.
            InfoLike(VfioIoctl.VFIO_DEVICE_GET_INFO, answer, minsz: 16, InfoQueryKind.Device);

        public static AnsweringKernel Region(uint index, byte[] answer)
        {
            // vfio_pci_ioctl_get_region_info: minsz = offsetofend(offset) = 32; an unknown index is EINVAL.
            var inner = InfoLike(VfioIoctl.VFIO_DEVICE_GET_REGION_INFO, answer, minsz: 32, InfoQueryKind.Region)._answer;
            return new AnsweringKernel((request, arg) =>
                arg.Length >= 12 && StructBytes.Read<uint>(arg, 8) != index ? -Errno.EINVAL : inner(request, arg));
        }

        private static AnsweringKernel InfoLike(IoctlRequest request, byte[] answer, int minsz, InfoQueryKind kind) =>
            new((number, arg) =>
            {
                if (number != request.Number) return -Errno.ENOTTY;
                uint argsz = StructBytes.Read<uint>(arg);
                if (argsz < minsz) return -Errno.EINVAL;
                if (argsz < answer.Length)
                {
                    var fixedPart = answer.AsSpan(0, kind.FixedSize).ToArray();
                    StructBytes.Write(fixedPart, (uint)answer.Length);
                    StructBytes.Write(fixedPart, 0u, kind.CapOffsetField);
                    fixedPart.AsSpan(0, Math.Min(fixedPart.Length, arg.Length)).CopyTo(arg);
                    return 0;
                }
                answer.CopyTo(arg);
                StructBytes.Write(arg, argsz);
                return 0;
            });

        public HostKind Kind => HostKind.Simulated;
        public string Description => "info answers from kernel-interface.md (lab)";
        public IHostFiles Files => throw new NotSupportedException();

        public IHostClock Clock => MonotonicClock.Instance;
        public int Open(string path, int flags) => 3;
        public int Close(int fd) => 0;

        public int Ioctl(int fd, uint request, Span<byte> arg)
        {
            ArgszSeen.Add(StructBytes.Read<uint>(arg));
            return _answer(request, arg);
        }

        public int Ioctl(int fd, uint request, ulong value) => -Errno.ENOTTY;
        public long Pread(int fd, Span<byte> buffer, long offset) => -Errno.EINVAL;
        public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset) => -Errno.EINVAL;
        public long Read(int fd, Span<byte> buffer) => -Errno.EINVAL;
        public long Write(int fd, ReadOnlySpan<byte> buffer) => -Errno.EINVAL;
        public nint Mmap(nint length, long offset, int prot, int flags, int fd) => -Errno.ENODEV;
        public int Munmap(nint address, nint length) => -Errno.EINVAL;

        public int Poll(int fd, short events, int timeoutMs, out short revents)
        {
            revents = 0;
            return -Errno.EINVAL;
        }
    }
}
