using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// The UAPI values the installed 6.1 header cannot confirm (6.2 additions, 5.8 names, kernel-internal
/// limits) and every ioctl number, against literals transcribed from kernel-interface.md. Needs no compiler.
/// </summary>
public class PinnedUapiValuesTests
{
    public static IEnumerable<object[]> Pins() => PinnedUapi.All.Select(p => new object[] { p.Key });

    [Theory]
    [MemberData(nameof(Pins))]
    public void ThePinnedUapiValueIsWhatTheModuleDeclares(string key)
    {
        PinnedValue pin = PinnedUapi.Find(key)!;
        string kind = key[..key.IndexOf(':')];
        string name = key[(key.IndexOf(':') + 1)..];
        switch (kind)
        {
            case "ioctl":
                var request = NativeDeclarations.IoctlRequests().Where(r => r.Request.Name == name).Select(r => r.Request).ToList();
                Assert.True(request.Count == 1, $"VfioIoctl declares no request {name} ({pin.Source})");
                Assert.Equal(pin.Value, request[0].Number);
                break;
            case "const":
                var constant = NativeDeclarations.Constants().SingleOrDefault(c => c.Name == name);
                Assert.True(constant is not null, $"the module declares no constant {name} ({pin.Source})");
                Assert.Equal(pin.Value, constant!.Value);
                break;
            case "struct":
                var mirror = NativeDeclarations.Structs().SingleOrDefault(s => s.Name == name);
                Assert.True(mirror is not null, $"Native/ has no mirror of struct {name} ({pin.Source})");
                Assert.Equal(pin.Value, mirror!.Size);
                break;
            default:
                int dot = name.IndexOf('.');
                var field = NativeDeclarations.Structs().SingleOrDefault(s => s.Name == name[..dot])?.Fields.SingleOrDefault(f => f.Path == name[(dot + 1)..]);
                Assert.True(field is not null, $"Native/ has no field {name} ({pin.Source})");
                Assert.Equal(pin.Value, field!.Offset);
                Assert.Equal(pin.Size, field.Size);
                break;
        }
    }

    [Fact]
    public void EveryIoctlRequestIsPinnedToItsLiteralNumber()
    {
        var unpinned = NativeDeclarations.IoctlRequests().Select(r => "ioctl:" + r.Request.Name)
            .Where(k => PinnedUapi.Ioctls.All(p => p.Key != k)).ToList();
        Assert.True(unpinned.Count == 0, "no literal in PinnedUapi.Ioctls (kernel-interface.md a.2) for: " + string.Join(", ", unpinned));
    }

    /// <summary>The numbers as rust-vmm's vfio-bindings test states them: _IO(';', 100 + n).</summary>
    [Fact]
    public void IoctlNumbersAreTheLiteralsOfIoSemicolonHundredPlusN()
    {
        Assert.Equal(15204u, VfioIoctl.VFIO_GET_API_VERSION.Number);
        Assert.Equal(0x3B64u, VfioIoctl.VFIO_GET_API_VERSION.Number);
        Assert.Equal(0x3B65u, VfioIoctl.VFIO_CHECK_EXTENSION.Number);
        Assert.Equal(0x3B6Au, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD.Number);
        Assert.Equal(0x3B6Cu, VfioIoctl.VFIO_DEVICE_GET_REGION_INFO.Number);
        Assert.Equal(0x3B70u, VfioIoctl.VFIO_IOMMU_GET_INFO.Number);
        Assert.Equal(0x3B72u, VfioIoctl.VFIO_IOMMU_UNMAP_DMA.Number);
        Assert.Equal(0x3B75u, VfioIoctl.VFIO_DEVICE_FEATURE.Number);
        Assert.Equal(0x3B75u, VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Number);
        Assert.Equal(0x3B79u, VfioIoctl.VFIO_MIG_GET_PRECOPY_INFO.Number);
        Assert.Equal((uint)';', VfioIoctl.VFIO_TYPE);
        Assert.Equal(100u, VfioIoctl.VFIO_BASE);
        Assert.Equal(0, VfioIoctl.VFIO_API_VERSION);
    }

    /// <summary>Bitmap sizes of kernel-interface.md g.3 (4 KiB pages): bytes = ceil(pages / 64) * 8.</summary>
    [Theory]
    [InlineData(512UL, 64UL)] // 2 MiB
    [InlineData(160UL, 24UL)] // 640 KiB (0xa0000)
    [InlineData(4096UL, 512UL)] // 16 MiB
    [InlineData(524032UL, 65504UL)] // 2 GiB - 1 MiB (0x7ff00000)
    [InlineData(1UL << 31, 1UL << 28)] // 8 TiB: exactly DIRTY_BITMAP_SIZE_MAX
    [InlineData(1UL, 8UL)] // one page still takes a whole u64 word
    [InlineData(0UL, 0UL)]
    public void DirtyBitmapBytesRoundsPagesUpToWholeU64Words(ulong pages, ulong bytes) =>
        Assert.Equal(bytes, VfioConstants.DIRTY_BITMAP_BYTES(pages));

    [Fact]
    public void TheType1BitmapLimitIsTheBitmapOfTheMaximumPageCount() =>
        // DIRTY_BITMAP_SIZE_MAX is defined as DIRTY_BITMAP_BYTES(DIRTY_BITMAP_PAGES_MAX) (kernel-interface.md c.1).
        Assert.Equal(VfioConstants.DIRTY_BITMAP_SIZE_MAX, VfioConstants.DIRTY_BITMAP_BYTES(VfioConstants.DIRTY_BITMAP_PAGES_MAX));
}
