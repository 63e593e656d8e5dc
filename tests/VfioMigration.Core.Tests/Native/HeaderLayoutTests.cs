using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// Every ioctl number, struct size, field offset and constant of Native/ against what gcc reports for
/// the system's &lt;linux/vfio.h&gt; (linux-libc-dev 6.1). The C program is generated from reflection,
/// so a new mirror or constant is checked without being listed; what the header lacks must be pinned
/// in <see cref="PinnedUapi"/> (checked by <see cref="PinnedUapiValuesTests"/>).
/// </summary>
[Collection(HeaderCollection.Name)]
public class HeaderLayoutTests
{
    private readonly HeaderFacts _h;

    public HeaderLayoutTests(HeaderFactsFixture fixture) => _h = fixture.Facts;

    [Fact]
    public void EveryIoctlRequestNumberIsTheHeaderMacroOfTheSameName()
    {
        var problems = new List<string>();
        int compared = 0;
        foreach (var (_, request) in NativeDeclarations.IoctlRequests())
        {
            string key = "ioctl:" + request.Name;
            if (!_h.Values.TryGetValue(key, out var header)) continue;
            compared++;
            if (!header.IsMacro) problems.Add($"{request.Name}: the header defines it, but not as a macro");
            if (header.Value != request.Number) problems.Add($"{request.Name}: module 0x{request.Number:X4}, header 0x{header.Value:X4}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(compared >= 17, $"only {compared} ioctl numbers were found in the header; the probe is not seeing it");
    }

    [Fact]
    public void EveryConstantTheHeaderDefinesHasTheHeadersValue()
    {
        var problems = new List<string>();
        int compared = 0;
        foreach (var c in NativeDeclarations.Constants())
        {
            if (!_h.Values.TryGetValue("const:" + c.Name, out var header)) continue;
            compared++;
            if (header.Value != c.Value) problems.Add($"{c.DeclaredIn}.{c.Name}: module {c.Value} (0x{c.Value:X}), header {header.Value} (0x{header.Value:X})");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(compared >= 80, $"only {compared} constants were found in the header; the probe is not seeing it");
    }

    [Fact]
    public void EveryStructMirrorHasTheHeadersSize()
    {
        var problems = new List<string>();
        foreach (var s in NativeDeclarations.Structs())
        {
            if (!_h.StructSizes.TryGetValue(s.Name, out long size)) continue;
            if (size != s.Size) problems.Add($"struct {s.Name}: module {s.Size} bytes, header {size}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(_h.StructSizes.Count >= 20, $"only {_h.StructSizes.Count} structs were found in the header");
    }

    [Fact]
    public void EveryMirrorFieldHasTheHeadersOffsetWidthAndKind()
    {
        var problems = new List<string>();
        foreach (var s in NativeDeclarations.Structs())
        {
            foreach (var f in s.Fields)
            {
                string key = $"field:{s.Name}.{f.Path}";
                if (!_h.Fields.TryGetValue(key, out var header)) continue;
                if (header.Offset != f.Offset) problems.Add($"{s.Name}.{f.Path}: module offset {f.Offset}, header {header.Offset}");
                if (header.Size != f.Size) problems.Add($"{s.Name}.{f.Path}: module {f.Size} bytes ({f.ManagedType}), header {header.Size}");
                string? kind = KindMismatch(f, header);
                if (kind is not null) problems.Add($"{s.Name}.{f.Path}: {kind}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(_h.Fields.Count >= 70, $"only {_h.Fields.Count} struct members were found in the header");
    }

    [Fact]
    public void EverythingTheHeaderLacksIsPinnedToTheDocumentedUapi()
    {
        var unpinned = _h.Absent.Where(key => PinnedUapi.Find(key) is null).OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.True(unpinned.Count == 0,
            $"<linux/vfio.h> {_h.LinuxVersion} does not define these, and PinnedUapi has no literal for them " +
            $"(add each with its kernel-interface.md section):\n{string.Join("\n", unpinned)}");
    }

    /// <summary>
    /// What the 6.1 header lacks, as the task and kernel-interface.md b (version map) state it: the 6.2 additions
    /// (PRE_COPY, PRECOPY_INFO, MIG_DATA_SIZE), the explicit pad of vfio_iommu_type1_info, the 5.8
    /// names of the v1 region (renamed ..._DEPRECATED in 5.18), and kernel-internal limits. This checks
    /// the probe itself: a detector that called present items absent would leave them unchecked.
    /// </summary>
    [Fact]
    public void TheProbeFindsExactlyWhatThe61HeaderLacks()
    {
        string[] expected =
        {
            "ioctl:VFIO_MIG_GET_PRECOPY_INFO",
            "const:VFIO_MIGRATION_PRE_COPY", "const:VFIO_DEVICE_STATE_PRE_COPY", "const:VFIO_DEVICE_STATE_PRE_COPY_P2P",
            "const:VFIO_DEVICE_STATE_NR", "const:VFIO_DEVICE_FEATURE_MIG_DATA_SIZE",
            "const:VFIO_REGION_TYPE_MIGRATION", "const:VFIO_REGION_SUBTYPE_MIGRATION",
            "const:DIRTY_BITMAP_PAGES_MAX", "const:DIRTY_BITMAP_SIZE_MAX", "const:DMA_ENTRY_LIMIT", "const:LOG_MAX_RANGES",
            "struct:vfio_precopy_info", "field:vfio_precopy_info.argsz", "field:vfio_precopy_info.flags",
            "field:vfio_precopy_info.initial_bytes", "field:vfio_precopy_info.dirty_bytes",
            "struct:vfio_device_feature_mig_data_size", "field:vfio_device_feature_mig_data_size.stop_copy_length",
            "field:vfio_iommu_type1_info.pad",
        };
        // 6.1 has no <linux/iommufd.h> (6.2) and no vfio cdev (6.6): every iommufd item and the cdev ioctls are absent.
        expected = expected.Concat(PinnedUapi.Iommufd.Select(p => p.Key))
            .Concat(PinnedUapi.Ioctls.Where(p => p.Source == PinnedUapi.Uapi || p.Source == PinnedUapi.Cdev).Select(p => p.Key)).ToArray();
        Assert.True(_h.LinuxVersion.StartsWith("6.1.", StringComparison.Ordinal),
            $"this list describes the 6.1 UAPI headers (linux-libc-dev 6.1, Debian 12) the project builds with; " +
            $"the installed <linux/vfio.h> is {_h.LinuxVersion} and lacks: {string.Join(", ", _h.Absent.Order(StringComparer.Ordinal))}");
        Assert.Equal(expected.Order(StringComparer.Ordinal), _h.Absent.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheIoctlTableListsEveryRequestFieldOnceUnderItsOwnName()
    {
        var fields = NativeDeclarations.IoctlRequests();
        foreach (var (fieldName, request) in fields) Assert.Equal(fieldName, request.Name);
        Assert.Equal(fields.Select(f => f.Request).OrderBy(r => r.Name, StringComparer.Ordinal),
            VfioIoctl.All.Concat(IommufdIoctl.All).OrderBy(r => r.Name, StringComparer.Ordinal));
    }

    private static string? KindMismatch(MirrorField f, HeaderField c) => f.Kind switch
    {
        FieldKind.Struct when c.TypeClass != HeaderField.RecordClass => $"module nests a struct ({f.ManagedType}), header type class {c.TypeClass}",
        FieldKind.Signed when c.TypeClass != HeaderField.IntegerClass || !c.Signed => $"module {f.ManagedType} is signed, the header's member is not a signed integer",
        // A C pointer the kernel dereferences (vfio_bitmap.data) is carried as a u64 user address.
        FieldKind.Unsigned when c.TypeClass == HeaderField.PointerClass => f.ManagedType == nameof(UInt64) ? null : $"module {f.ManagedType} for a C pointer (use ulong)",
        FieldKind.Unsigned when c.TypeClass != HeaderField.IntegerClass || c.Signed => $"module {f.ManagedType} is unsigned, header type class {c.TypeClass}, signed {c.Signed}",
        _ => null,
    };
}
