using System;
using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Reads the dirty pages of a range of IOVA (VFIO_IOMMU_DIRTY_PAGES GET_BITMAP). Reading clears the
/// kernel's record of those pages: the bitmap returned is then the only copy.
/// </summary>
[Cmdlet(VerbsCommon.Get, "DirtyBitmap", DefaultParameterSetName = InputObjectParameterSet)]
[OutputType(typeof(DirtyBitmap), typeof(DirtyRange))]
public sealed class GetDirtyBitmapCommand : ContainerCmdlet
{
    #region Parameters

    /// <summary>First IOVA of the range; the lowest mapping by default.</summary>
    [Parameter]
    [NumberTransformation]
    public ulong? Iova { get; set; }

    /// <summary>Bytes in the range; up to the end of the highest mapping by default.</summary>
    [Parameter]
    [NumberTransformation]
    public ulong? Size { get; set; }

    /// <summary>Return the dirty pages as contiguous runs (DirtyRange objects) instead of the bitmap.</summary>
    [Parameter]
    public SwitchParameter AsRange { get; set; }

    #endregion


    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        foreach (var c in SelectedContainers())
        {
            var extent = c.MappedExtent;
            ulong iova = Iova ?? extent?.Iova ?? 0;
            ulong size;
            if (Size is { } given)
            {
                size = given;
            }
            else
            {
                // Without -Size, up to the end of the highest mapping: there must be one above -Iova.
                ulong end = extent is { } e ? e.Iova + e.Size : 0;
                if (end <= iova)
                {
                    WriteError(RuleError(extent is null
                            ? $"Container {c.Id} has no DMA mappings, so there is nothing to read; map memory first, or give -Iova and -Size."
                            : $"Container {c.Id} has no mapping at or above 0x{iova:x} (its mappings end at 0x{end:x}); give -Size, or a lower -Iova.",
                        "NoMappings", ErrorCategory.InvalidArgument, c));
                    continue;
                }
                size = end - iova;
            }
            var progress = new ProgressRecord(1, "Get-DirtyBitmap", $"container {c.Id}: 0x{iova:x}+0x{size:x}");
            try
            {
                var bitmap = c.GetDirtyBitmap(iova, size, (done, total) =>
                {
                    progress.PercentComplete = total == 0 ? 100 : (int)(100 * done / total);
                    progress.StatusDescription = $"container {c.Id}: {Readable.Bytes(done)} of {Readable.Bytes(total)} read";
                    WriteProgress(progress);
                }, StopToken);
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
                if (AsRange) WriteObject(bitmap.GetDirtyRanges(), enumerateCollection: true);
                else WriteObject(bitmap);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, $"container {c.Id} 0x{iova:x}+0x{size:x}"));
            }
        }
    }
}
