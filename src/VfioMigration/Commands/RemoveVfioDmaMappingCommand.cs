using System;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Removes DMA mappings (VFIO_IOMMU_UNMAP_DMA). While the container tracks dirty pages, the kernel hands
/// back the dirty bitmap of what it unmaps (GET_DIRTY_BITMAP), and the cmdlet returns it: those pages
/// would otherwise be lost to the migration.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "VfioDmaMapping", DefaultParameterSetName = InputObjectParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(DirtyBitmap))]
public sealed class RemoveVfioDmaMappingCommand : VfioCmdlet
{
    private const string InputObjectParameterSet = "InputObject";
    private const string RangeParameterSet = "Range";

    #region Parameters

    /// <summary>Mappings from Get-VfioDmaMapping or New-VfioDmaMapping.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = InputObjectParameterSet, ValueFromPipeline = true)]
    public DmaMapping[] InputObject { get; set; } = Array.Empty<DmaMapping>();

    /// <summary>The id of the container holding the mapping (a deserialized mapping's ContainerId binds by property).</summary>
    [Parameter(Mandatory = true, ParameterSetName = RangeParameterSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ContainerCompleter))]
    public int ContainerId { get; set; }

    /// <summary>First IOVA of the mapping.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RangeParameterSet, ValueFromPipelineByPropertyName = true)]
    [IovaTransformation]
    public ulong Iova { get; set; }

    /// <summary>Bytes of the mapping.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RangeParameterSet, ValueFromPipelineByPropertyName = true)]
    [NumberTransformation]
    public ulong Size { get; set; }

    /// <summary>Unmap without asking the kernel for the dirty bitmap, even while tracking.</summary>
    [Parameter]
    public SwitchParameter NoDirtyBitmap { get; set; }

    #endregion

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        foreach (var m in ParameterSetName == RangeParameterSet ? FindMapping() : InputObject)
        {
            var c = m.Container;
            bool withBitmap = c.IsTracking && !NoDirtyBitmap;
            if (!ShouldProcess($"{m} in container {c.Id}", withBitmap ? "Unmap and return its dirty bitmap" : "Unmap")) continue;
            try
            {
                var bitmap = c.Unmap(m, withBitmap);
                if (bitmap is not null) WriteObject(bitmap);
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, m));
            }
        }
    }

    /// <summary>The session's mapping at -Iova of -Size in container -ContainerId (a deserialized mapping names one so).</summary>
    private DmaMapping[] FindMapping()
    {
        var containers = ResolveContainers(null, new[] { ContainerId });
        if (containers.Length == 0) return Array.Empty<DmaMapping>();
        var m = containers[0].Mappings.FirstOrDefault(x => x.Iova.Value == Iova && x.Size == Size);
        if (m is not null) return new[] { m };
        WriteError(RuleError($"Container {ContainerId} of this session has no mapping at {new Iova(Iova)} of 0x{Size:x} bytes (Get-VfioDmaMapping lists them).",
            "MappingNotFound", ErrorCategory.ObjectNotFound, new Iova(Iova)));
        return Array.Empty<DmaMapping>();
    }
}
