namespace VfioMigration.Core.Kernel;

/// <summary>The host a session talks to, as Connect-VfioHost and Get-VfioHost show it.</summary>
public sealed class VfioHostInfo
{
    /// <summary>Linux (this machine) or Simulated.</summary>
    public required HostKind Kind { get; init; }

    /// <summary>Readable name of the host.</summary>
    public required string Description { get; init; }

    /// <summary>True if /dev/vfio/vfio exists on the host.</summary>
    public required bool VfioPresent { get; init; }

    /// <summary>How many IOMMU groups sysfs shows.</summary>
    public required int Groups { get; init; }

    /// <summary>How many of them have a /dev/vfio/N node.</summary>
    public required int VfioGroups { get; init; }

    /// <summary>For a simulated host, the configuration file it was built from.</summary>
    public string? Configuration { get; init; }

    public override string ToString() => Description;
}
