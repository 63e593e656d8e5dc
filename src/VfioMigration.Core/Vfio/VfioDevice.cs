using System;
using System.Collections.Generic;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Vfio;

/// <summary>Which migration interface a device offers.</summary>
public enum MigrationProtocol
{
    /// <summary>No migration driver: VFIO_DEVICE_FEATURE MIGRATION answers ENOTTY and there is no v1 region.</summary>
    None,

    /// <summary>The 5.8 series' migration region (type 3 / subtype 1).</summary>
    V1,

    /// <summary>Today's state machine (VFIO_DEVICE_FEATURE MIGRATION / MIG_DEVICE_STATE).</summary>
    V2,
}

/// <summary>One region of a device (BAR, config space, a vendor region such as the v1 migration region).</summary>
public sealed class VfioRegion
{
    public required uint Index { get; init; }

    /// <summary>BAR0..BAR5, ROM, Config, VGA, or Migration / Type(t,s) for vendor regions.</summary>
    public required string Name { get; init; }

    public required ulong Size { get; init; }

    /// <summary>Offset of the region in the device file (for pread/pwrite/mmap).</summary>
    public required ulong Offset { get; init; }

    public required bool Readable { get; init; }

    public required bool Writable { get; init; }

    public required bool Mappable { get; init; }

    /// <summary>Region type/subtype from the type capability, if any.</summary>
    public (uint Type, uint Subtype)? Type { get; init; }

    /// <summary>Mappable areas of a sparse-mmap region (offset, size), relative to the region.</summary>
    public IReadOnlyList<(ulong Offset, ulong Size)> SparseAreas { get; init; } = Array.Empty<(ulong, ulong)>();

    public override string ToString() => $"{Index} {Name} 0x{Size:x}";
}

/// <summary>One interrupt index of a device.</summary>
public sealed class VfioIrq
{
    public required uint Index { get; init; }

    /// <summary>INTx, MSI, MSI-X, ERR, REQ.</summary>
    public required string Name { get; init; }

    public required uint Count { get; init; }

    public required uint Flags { get; init; }

    public override string ToString() => $"{Name}x{Count}";
}

/// <summary>
/// An open device (VFIO_GROUP_GET_DEVICE_FD): what it offers, and the raw operations the migration code
/// builds on. Owned by this process until disposed.
/// </summary>
public sealed class VfioDevice : IDisposable
{
    private static readonly string[] s_pciRegionNames = { "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "Config", "VGA" };
    private static readonly string[] s_pciIrqNames = { "INTx", "MSI", "MSI-X", "ERR", "REQ" };

    internal VfioDevice(VfioHost host, string name, SafeFd fd, Discovery.VfioGroupDevice sysfs)
    {
        Host = host;
        Name = name;
        Fd = fd;
        Sysfs = sysfs;
    }

    /// <summary>What sysfs says about the device (bus, ids, driver, mdev type).</summary>
    public Discovery.VfioGroupDevice Sysfs { get; }

    /// <summary>What a state file records of the device, and what a destination must match.</summary>
    public Migration.DeviceIdentity Identity => new()
    {
        Name = Name,
        Protocol = Migration.Protocol,
        Bus = Sysfs.Bus,
        Model = Sysfs.VendorId is { } v ? $"{v:x4}:{Sysfs.DeviceId ?? 0:x4}" : Sysfs.MdevType ?? "unknown",
        Driver = Sysfs.Driver ?? "none",
        Host = Host.Description,
    };

    public VfioHost Host { get; }

    public string Name { get; }

    public SafeFd Fd { get; }

    /// <summary>VFIO_DEVICE_GET_INFO.</summary>
    public vfio_device_info GetInfo() => InfoQuery.DeviceInfo(Host, Fd).Info;

    /// <summary>
    /// VFIO_DEVICE_GET_REGION_INFO for every region, with their capabilities. An index the driver does not
    /// implement answers EINVAL (vfio-pci's VGA index on a device without VGA, as QEMU also meets) and is left out.
    /// </summary>
    public IReadOnlyList<VfioRegion> GetRegions(uint count)
    {
        var regions = new List<VfioRegion>();
        for (uint i = 0; i < count; i++)
        {
            InfoAnswer<vfio_region_info> answer;
            try { answer = InfoQuery.RegionInfo(Host, Fd, i); }
            catch (VfioNativeException e) when (e.Errno == Errno.EINVAL) { continue; }
            var r = answer.Info;
            var caps = answer.Capabilities;
            (uint, uint)? type = caps.RegionType is { } t ? (t.type, t.subtype) : null;
            string name = type is (VfioConstants.VFIO_REGION_TYPE_MIGRATION, VfioConstants.VFIO_REGION_SUBTYPE_MIGRATION) ? "Migration"
                : type is { } tt ? $"Type({tt.Item1},{tt.Item2})"
                : i < s_pciRegionNames.Length ? s_pciRegionNames[i] : $"Region{i}";
            var areas = new List<(ulong, ulong)>();
            if (caps.SparseMmapAreas is { } sparse)
                foreach (var a in sparse) areas.Add((a.offset, a.size));
            regions.Add(new VfioRegion
            {
                Index = i,
                Name = name,
                Size = r.size,
                Offset = r.offset,
                Readable = (r.flags & VfioConstants.VFIO_REGION_INFO_FLAG_READ) != 0,
                Writable = (r.flags & VfioConstants.VFIO_REGION_INFO_FLAG_WRITE) != 0,
                Mappable = (r.flags & VfioConstants.VFIO_REGION_INFO_FLAG_MMAP) != 0,
                Type = type,
                SparseAreas = areas,
            });
        }
        return regions;
    }

    /// <summary>VFIO_DEVICE_GET_IRQ_INFO for every interrupt index; an index the driver does not implement (EINVAL) is left out.</summary>
    public IReadOnlyList<VfioIrq> GetIrqs(uint count)
    {
        var irqs = new List<VfioIrq>();
        for (uint i = 0; i < count; i++)
        {
            var buf = StructBytes.Buffer(new vfio_irq_info { argsz = (uint)StructBytes.SizeOf<vfio_irq_info>(), index = i });
            int rc = Host.TryIoctl(Fd, VfioIoctl.VFIO_DEVICE_GET_IRQ_INFO, buf, $"index {i}");
            if (rc == -Errno.EINVAL) continue;
            if (rc < 0) throw new VfioNativeException(VfioIoctl.VFIO_DEVICE_GET_IRQ_INFO.Name, -rc, Name, $"index {i}");
            var info = StructBytes.Read<vfio_irq_info>(buf);
            irqs.Add(new VfioIrq { Index = i, Name = i < s_pciIrqNames.Length ? s_pciIrqNames[i] : $"IRQ{i}", Count = info.count, Flags = info.flags });
        }
        return irqs;
    }

    /// <summary>
    /// pwrite into region <paramref name="index"/> (a BAR, config space) at <paramref name="offset"/> within
    /// it, the way a guest's access arrives through a VMM: the bytes written. The region's place in the
    /// device fd is the one VFIO_DEVICE_GET_REGION_INFO gives; the driver decides what the write does (for
    /// the mtty sample, a UART register write).
    /// </summary>
    public long WriteRegion(uint index, ulong offset, byte[] data) =>
        Host.Pwrite(Fd, data, checked((long)(RegionOffset(index) + offset)), $"pwrite region {index} of {Name}");

    /// <summary>pread of <paramref name="count"/> bytes from region <paramref name="index"/> at <paramref name="offset"/> within it.</summary>
    public byte[] ReadRegion(uint index, ulong offset, int count)
    {
        var buffer = new byte[count];
        long n = Host.Pread(Fd, buffer, checked((long)(RegionOffset(index) + offset)), $"pread region {index} of {Name}");
        return n == count ? buffer : buffer.AsSpan(0, (int)n).ToArray();
    }

    private ulong RegionOffset(uint index)
    {
        var info = InfoQuery.RegionInfo(Host, Fd, index).Info;
        return info.offset;
    }

    /// <summary>VFIO_DEVICE_RESET.</summary>
    public void Reset() => Host.IoctlValue(Fd, VfioIoctl.VFIO_DEVICE_RESET, 0);

    /// <summary>
    /// VFIO_DEVICE_FEATURE with a payload: the feature id, GET/SET/PROBE flags, and the payload bytes.
    /// Returns the ioctl's result or -errno (ENOTTY means the device has no such driver support).
    /// </summary>
    public int TryFeature(uint feature, uint flags, Span<byte> payload, string? detail = null)
    {
        Span<byte> arg = stackalloc byte[StructBytes.SizeOf<vfio_device_feature>() + payload.Length];
        StructBytes.Write(arg, new vfio_device_feature { argsz = (uint)arg.Length, flags = feature | flags });
        payload.CopyTo(arg.Slice(StructBytes.SizeOf<vfio_device_feature>()));
        int rc = Host.TryIoctl(Fd, VfioIoctl.VFIO_DEVICE_FEATURE, arg, detail ?? FeatureName(feature, flags));
        arg.Slice(StructBytes.SizeOf<vfio_device_feature>()).CopyTo(payload);
        return rc;
    }

    /// <summary>"GET MIGRATION", "PROBE DMA_LOGGING_START" ...</summary>
    public static string FeatureName(uint feature, uint flags)
    {
        string op = (flags & VfioConstants.VFIO_DEVICE_FEATURE_PROBE) != 0 ? "PROBE "
            : (flags & VfioConstants.VFIO_DEVICE_FEATURE_SET) != 0 ? "SET "
            : (flags & VfioConstants.VFIO_DEVICE_FEATURE_GET) != 0 ? "GET " : "";
        string name = feature switch
        {
            VfioConstants.VFIO_DEVICE_FEATURE_MIGRATION => "MIGRATION",
            VfioConstants.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE => "MIG_DEVICE_STATE",
            VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START => "DMA_LOGGING_START",
            VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP => "DMA_LOGGING_STOP",
            VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT => "DMA_LOGGING_REPORT",
            VfioConstants.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE => "MIG_DATA_SIZE",
            _ => $"feature {feature}",
        };
        return op + name;
    }

    /// <summary>v2 migration flags (STOP_COPY|P2P|PRE_COPY), or null when the device has no v2 migration driver (ENOTTY).</summary>
    public ulong? GetMigrationFlags()
    {
        Span<byte> payload = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_migration>()];
        int rc = TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_MIGRATION, VfioConstants.VFIO_DEVICE_FEATURE_GET, payload);
        if (rc == -Errno.ENOTTY) return null;
        if (rc < 0) throw new VfioNativeException("VFIO_DEVICE_FEATURE(GET MIGRATION)", -rc, Name);
        return StructBytes.Read<vfio_device_feature_migration>(payload).flags;
    }

    /// <summary>v2: the driver's estimate of the stop-copy bytes (VFIO_DEVICE_FEATURE_MIG_DATA_SIZE), or null if it gives none.</summary>
    public ulong? GetStopCopySize()
    {
        Span<byte> size = stackalloc byte[StructBytes.SizeOf<vfio_device_feature_mig_data_size>()];
        return TryFeature(VfioConstants.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VfioConstants.VFIO_DEVICE_FEATURE_GET, size) == 0
            ? StructBytes.Read<vfio_device_feature_mig_data_size>(size).stop_copy_length
            : null;
    }

    /// <summary>True if PROBE of a feature with the given GET/SET flag succeeds.</summary>
    public bool ProbeFeature(uint feature, uint getOrSet) =>
        TryFeature(feature, getOrSet | VfioConstants.VFIO_DEVICE_FEATURE_PROBE, Span<byte>.Empty) == 0;

    private Migration.MigrationSupport? _migration;

    /// <summary>What migration the device supports (probed once: FEATURE MIGRATION, else the v1 region).</summary>
    public Migration.MigrationSupport Migration => _migration ??= VfioMigration.Core.Migration.MigrationSupport.Probe(this);

    /// <summary>The open migration data session (v2 data fd), if an arc opened one and no arc has ended it.</summary>
    public SafeFd? DataFd { get; internal set; }

    /// <summary>The device's own DMA log while it runs (Start-DirtyTracking -Device), else null.</summary>
    public Dirty.DeviceDirtyLogInfo? DmaLog { get; internal set; }

    public void Dispose()
    {
        DataFd?.Dispose();
        DataFd = null;
        Fd.Dispose();
    }

    public override string ToString() => Name;
}
