using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.Migration;

/// <summary>One reason a migration would fail or disappoint (Hyper-V Compare-VM's VMCompatibilityError).</summary>
public sealed class MigrationIncompatibility
{
    /// <summary>Stable id: NoMigrationSupport, NoDirtyTracking, NoPreCopy, DestinationMismatch, GroupBusy, ...</summary>
    public required string MessageId { get; init; }

    public required string Message { get; init; }

    /// <summary>The device or container the finding is about.</summary>
    public required string Source { get; init; }

    public override string ToString() => $"{MessageId}: {Message}";
}

/// <summary>A pre-flight report, in the manner of Hyper-V's Compare-VM.</summary>
public sealed class MigrationCompatibilityReport
{
    public required string Source { get; init; }

    public string? Destination { get; init; }

    public required IReadOnlyList<MigrationIncompatibility> Incompatibilities { get; init; }

    /// <summary>True when nothing was found.</summary>
    public bool IsCompatible => Incompatibilities.Count == 0;

    public required HostKind HostKind { get; init; }
}

/// <summary>
/// What Test-VfioMigration checks before anything moves: that both devices can be opened by this process,
/// that the source has a migration driver (and pre-copy), that the destination is of the same kind and
/// idle, and that guest memory can be tracked. Devices whose groups no container of the session holds
/// are opened for a moment through a container of their own.
/// </summary>
public static class MigrationPreflight
{
    public static MigrationCompatibilityReport Check(VfioHost host, IReadOnlyList<VfioContainer> session, string source, string? destination)
    {
        var found = new List<MigrationIncompatibility>();
        void Add(string id, string about, string message) => found.Add(new MigrationIncompatibility { MessageId = id, Source = about, Message = message });

        var groups = IommuGroupDiscovery.GetGroups(host.Kernel);
        var src = Inspect(host, session, groups, source, Add);
        var dst = destination is null ? null : Inspect(host, session, groups, destination, Add);
        if (destination is not null && string.Equals(source, destination, StringComparison.OrdinalIgnoreCase))
            Add("SameDevice", destination, "the source and the destination are the same device.");

        if (src is { } s)
        {
            if (s.Identity.Protocol == MigrationProtocol.None)
            {
                Add("NoMigrationSupport", source, $"{source} has no migration driver: VFIO_DEVICE_FEATURE MIGRATION answers ENOTTY and it has no v1 migration region; bind it to a variant driver that migrates (mlx5_vfio_pci, hisi_acc_vfio_pci, ...).");
            }
            else
            {
                if (s.Identity.Protocol == MigrationProtocol.V2 && (s.Flags & VfioConstants.VFIO_MIGRATION_PRE_COPY) == 0)
                    Add("NoPreCopy", source, $"{source} has no PRE_COPY: its whole state ({s.StopCopySize?.ToString() ?? "unknown"} bytes) moves while it is stopped, so the downtime grows with it.");
                if (s.State != VfioMigrationState.Running)
                    Add("SourceNotRunning", source, $"{source} is in {MigrationFsm.Name(s.State)}; a migration starts from RUNNING.");
            }
            if (s.Container is { } c)
            {
                if (c.Backend == VfioBackend.Iommufd && c.Info is { DirtyTracking: false })
                {
                    if (!s.DmaLogging) Add("NoDirtyTracking", $"container {c.Id}", c.DirtyTrackingFallback + ": guest memory would have to be resent whole.");
                }
                else if (c.Backend == VfioBackend.Iommufd)
                {
                    // The IOMMU's dirty bits: what devices wrote.
                }
                else if (c.Info is { DirtyTracking: false } || c.IommuType != VfioConstants.VFIO_TYPE1v2_IOMMU)
                    Add("NoDirtyTracking", $"container {c.Id}", $"container {c.Id} cannot track dirty pages (no migration capability, or not Type1v2): guest memory would have to be resent whole.");
                else if (c.Scope == Dirty.DirtyScope.AllMappedPages && !s.DmaLogging)
                    Add("NoDirtyTracking", $"container {c.Id}", $"container {c.Id} holds a device behind the IOMMU that does not log its DMA: the kernel reports every mapped page dirty on every read, so guest memory never converges (QEMU blocks such a migration).");
            }
        }
        if (src is { } a && dst is { } b)
        {
            string? mismatch = a.Identity.Mismatch(b.Identity);
            if (mismatch is not null) Add("DestinationMismatch", destination!, $"{destination} cannot take the state of {source}: {mismatch}.");
            if (b.State is not (VfioMigrationState.Running or VfioMigrationState.Stop))
                Add("DestinationNotReady", destination!, $"{destination} is in {MigrationFsm.Name(b.State)}; it must be RUNNING or STOP to start resuming.");
        }
        return new MigrationCompatibilityReport { Source = source, Destination = destination, Incompatibilities = found, HostKind = host.Kind };
    }

    private sealed record Inspection(DeviceIdentity Identity, ulong Flags, VfioMigrationState State, ulong? StopCopySize, bool DmaLogging, VfioContainer? Container);

    private static Inspection? Inspect(VfioHost host, IReadOnlyList<VfioContainer> session, IReadOnlyList<VfioGroupInfo> groups, string name, Action<string, string, string> add)
    {
        var group = IommuGroupDiscovery.FindDevice(groups, name)?.Group;
        if (group is null)
        {
            add("DeviceNotFound", name, $"no IOMMU group on {host.Description} holds a device named {name}.");
            return null;
        }
        try
        {
            return VfioContainer.ReadDevice(host, session, group.Group, name, (device, holding) =>
            {
                var support = device.Migration;
                var state = support.Protocol == MigrationProtocol.None ? VfioMigrationState.Running : DeviceMigration.GetState(device);
                ulong? size = support.Protocol == MigrationProtocol.V2 ? device.GetStopCopySize() : null;
                bool logging = support.Protocol == MigrationProtocol.V2 && device.ProbeFeature(VfioConstants.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VfioConstants.VFIO_DEVICE_FEATURE_SET);
                return new Inspection(device.Identity, support.Flags, state, size, logging, holding);
            });
        }
        catch (VfioNativeException e) when (e.Errno == Errno.EBUSY)
        {
            add("GroupBusy", name, $"group {group.Group} of {name} is busy: {e.Detail ?? e.Message}");
            return null;
        }
        catch (VfioRuleException e) when (e.RuleId == "GroupNotViable")
        {
            add("GroupNotViable", name, e.Message);
            return null;
        }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException)
        {
            add("DeviceNotUsable", name, e.Message);
            return null;
        }
    }
}
