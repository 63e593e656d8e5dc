using System.IO;
using System.Management.Automation;
using System.Runtime.CompilerServices;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;
using VfioMigration.Pictures;

namespace VfioMigration.Commands;

/// <summary>
/// Draws a dirty bitmap (Get-DirtyBitmap, Import-DirtyBitmap) or the result of Compare-DirtyBitmap as a
/// PNG heatmap: the IOVA range in rows, each cell shaded by its dirty share, gaps and mapping boundaries
/// marked, an IOVA axis, a legend and a title.
/// </summary>
[Cmdlet(VerbsData.Export, "DirtyHeatmap", DefaultParameterSetName = BitmapParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(FileInfo))]
public sealed class ExportDirtyHeatmapCommand : PictureCmdlet
{
    private const string BitmapParameterSet = "Bitmap";
    private const string ComparisonParameterSet = "Comparison";

    #region Parameters (and -Path, -Force, -PassThru from PictureCmdlet)

    /// <summary>The bitmap from Get-DirtyBitmap or Import-DirtyBitmap.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = BitmapParameterSet)]
    public DirtyBitmap InputObject { get; set; } = null!;

    /// <summary>The result of Compare-DirtyBitmap: its combined bitmap is drawn, the title says how it was combined.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ComparisonParameterSet)]
    public DirtyBitmapComparison Comparison { get; set; } = null!;

    /// <summary>Width of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(480, 8192)]
    public int Width { get; set; } = 1200;

    /// <summary>Height of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(320, 8192)]
    public int Height { get; set; } = 800;

    #endregion

    protected override void ProcessRecord()
    {
        object target = ParameterSetName == ComparisonParameterSet ? Comparison : InputObject;
        if (SecondObject("heatmap", target)) return;
        var bitmap = ParameterSetName == ComparisonParameterSet ? Comparison.Result : InputObject;
        WritePicture($"Draw the heatmap of {bitmap}", target);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected override void Render(string path)
    {
        var bitmap = ParameterSetName == ComparisonParameterSet ? Comparison.Result : InputObject;
        string? caption = ParameterSetName == ComparisonParameterSet ? Caption(Comparison) : null;
        PictureFile.Write(path, HeatmapPicture.RenderPng(bitmap, Width, Height, caption), Force);
    }

    private static string Caption(DirtyBitmapComparison c) => c.Operation switch
    {
        DirtyBitmapOperation.Difference => $"Where two bitmaps differ: {c.ResultDirtyPages} pages dirty in the reference ({c.ReferenceDirtyPages}) and not in the other ({c.DifferenceDirtyPages})",
        DirtyBitmapOperation.Intersection => $"Dirty in both bitmaps: {c.ResultDirtyPages} pages (reference {c.ReferenceDirtyPages}, other {c.DifferenceDirtyPages})",
        _ => $"Dirty in either bitmap: {c.ResultDirtyPages} pages (reference {c.ReferenceDirtyPages}, other {c.DifferenceDirtyPages})",
    } + $", {c.Iova}+0x{c.Size:x}";
}
