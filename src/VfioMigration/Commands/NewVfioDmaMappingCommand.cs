using System;
using System.Management.Automation;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Maps guest memory for device DMA in a container (VFIO_IOMMU_MAP_DMA).</summary>
[Cmdlet(VerbsCommon.New, "VfioDmaMapping", DefaultParameterSetName = InputObjectParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(DmaMapping))]
public sealed class NewVfioDmaMappingCommand : VfioCmdlet
{
    private const string InputObjectParameterSet = "InputObject";
    private const string IdParameterSet = "Id";

    #region Parameters

    /// <summary>The container; the session's only container by default.</summary>
    [Parameter(ParameterSetName = InputObjectParameterSet, ValueFromPipeline = true)]
    public VfioContainer? Container { get; set; }

    /// <summary>The container's id.</summary>
    [Parameter(Mandatory = true, ParameterSetName = IdParameterSet)]
    [ArgumentCompleter(typeof(ContainerCompleter))]
    public int ContainerId { get; set; }

    /// <summary>First IOVA of the mapping (0x10000000 or 268435456).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [NumberTransformation]
    public ulong Iova { get; set; }

    /// <summary>Bytes to map (2MB, 0x200000).</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [NumberTransformation]
    public ulong Size { get; set; }

    /// <summary>Where the memory comes from.</summary>
    [Parameter]
    public DmaBacking Backing { get; set; } = DmaBacking.Anonymous;

    /// <summary>The file that backs the mapping, with -Backing File.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>Which way the device may access the memory.</summary>
    [Parameter]
    public DmaAccess Access { get; set; } = DmaAccess.ReadWrite;

    #endregion

    protected override void ProcessRecord()
    {
        var container = ResolveContainers(Container is null ? null : new[] { Container }, ParameterSetName == IdParameterSet ? new[] { ContainerId } : null);
        if (container.Length == 0) return;
        var c = container[0];
        if (Path is not null && Backing != DmaBacking.File) Backing = DmaBacking.File;
        string path = Path is null ? "" : GetUnresolvedProviderPathFromPSPath(Path);
        if (!ShouldProcess($"container {c.Id}", $"Map 0x{Iova:x}+0x{Size:x} ({Backing}{(Path is null ? "" : " " + path)}, {Access})")) return;
        using var trace = TraceCalls();
        try
        {
            WriteObject(c.Map(Iova, Size, Backing, Access, Path is null ? null : path));
        }
        catch (Exception e) when (IsVfioError(e) || e is System.IO.IOException)
        {
            WriteError(ErrorFor(e, $"0x{Iova:x}+0x{Size:x}"));
        }
    }
}
