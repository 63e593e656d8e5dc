using System;
using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Removes DMA mappings (VFIO_IOMMU_UNMAP_DMA). While the container tracks dirty pages, the kernel hands
/// back the dirty bitmap of what it unmaps (GET_DIRTY_BITMAP), and the cmdlet returns it: those pages
/// would otherwise be lost to the migration.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "VfioDmaMapping", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(DirtyBitmap))]
public sealed class RemoveVfioDmaMappingCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>Mappings from Get-VfioDmaMapping or New-VfioDmaMapping.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    public DmaMapping[] InputObject { get; set; } = Array.Empty<DmaMapping>();

    /// <summary>Unmap without asking the kernel for the dirty bitmap, even while tracking.</summary>
    [Parameter]
    public SwitchParameter NoDirtyBitmap { get; set; }

    #endregion

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        foreach (var m in InputObject)
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
}
