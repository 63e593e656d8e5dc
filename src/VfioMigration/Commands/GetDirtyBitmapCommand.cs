using System;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Reads the dirty pages of a range of IOVA (VFIO_IOMMU_DIRTY_PAGES GET_BITMAP, or iommufd's
/// IOMMU_HWPT_GET_DIRTY_BITMAP). Reading clears the kernel's record of those pages (except with -NoClear on
/// an iommufd container): the bitmap returned is then the only copy. The kernel writes straight
/// into the bitmap returned; -AsRange and -Granularity stream its runs.
/// </summary>
[Cmdlet(VerbsCommon.Get, "DirtyBitmap", DefaultParameterSetName = InputObjectParameterSet)]
[OutputType(typeof(DirtyBitmap), typeof(DirtyRange))]
public sealed class GetDirtyBitmapCommand : ContainerCmdlet
{
    private const string DeviceParameterSet = "Device";

    #region Parameters

    /// <summary>Read a device's own DMA log (VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) instead of a container's tracking.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DeviceParameterSet)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "";

    /// <summary>First IOVA of the range; the lowest mapping by default.</summary>
    [Parameter]
    [NumberTransformation]
    public ulong? Iova { get; set; }

    /// <summary>Bytes in the range; up to the end of the highest mapping by default.</summary>
    [Parameter]
    [NumberTransformation]
    public ulong? Size { get; set; }

    /// <summary>Return the dirty pages as contiguous runs (DirtyRange objects) instead of the bitmap, written as they are found.</summary>
    [Parameter]
    public SwitchParameter AsRange { get; set; }

    /// <summary>Return ranges of blocks of this many bytes (e.g. 2MB) that hold dirty pages; implies -AsRange.</summary>
    [Parameter]
    [NumberTransformation]
    public ulong? Granularity { get; set; }

    /// <summary>Read without clearing (iommufd's IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR): the next read sees the same pages again.</summary>
    [Parameter(ParameterSetName = InputObjectParameterSet)]
    [Parameter(ParameterSetName = IdParameterSet)]
    public SwitchParameter NoClear { get; set; }

    #endregion


    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        if (ParameterSetName == DeviceParameterSet)
        {
            var device = OpenSessionDevice(Device);
            if (device is null) return;
            try
            {
                WriteResult(DeviceDirtyLog.Read(device, Iova, Size));
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, Device));
            }
            return;
        }
        foreach (var c in SelectedContainers())
        {
            ulong iova, size;
            try { (iova, size) = c.ResolveRange(Iova, Size); }
            catch (VfioRuleException e)
            {
                WriteError(ErrorFor(e, c));
                continue;
            }
            var progress = new ProgressRecord(1, "Get-DirtyBitmap", $"container {c.Id}: 0x{iova:x}+0x{size:x}");
            try
            {
                var bitmap = c.GetDirtyBitmap(iova, size, (done, total) =>
                {
                    progress.PercentComplete = total == 0 ? 100 : (int)(100 * done / total);
                    progress.SecondsRemaining = SecondsRemaining(progress, progress.PercentComplete);
                    progress.StatusDescription = $"container {c.Id}: {Readable.Bytes(done)} of {Readable.Bytes(total)} read";
                    WriteProgress(progress);
                }, StopToken, NoClear);
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
                WriteResult(bitmap);
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

    /// <summary>The bitmap, or its ranges one by one as the scan finds them (a huge bitmap's runs are never all held at once).</summary>
    private void WriteResult(DirtyBitmap bitmap)
    {
        if (!AsRange && Granularity is null)
        {
            WriteObject(bitmap);
            return;
        }
        if (Granularity == 0) throw new VfioRuleException("BadGranularity", "-Granularity 0 has no blocks: give a multiple of the page size, such as 2MB.");
        foreach (var range in bitmap.EnumerateDirtyRanges(Granularity ?? 0))
        {
            StopToken.ThrowIfCancellationRequested();
            WriteObject(range);
        }
    }
}
