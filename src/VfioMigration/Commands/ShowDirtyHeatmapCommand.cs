using System;
using System.Management.Automation;
using System.Management.Automation.Host;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// A compact heatmap of a dirty bitmap in Unicode block characters, as wide as the console: a quick look
/// over SSH where no image can be opened. Needs no drawing library.
/// </summary>
[Cmdlet(VerbsCommon.Show, "DirtyHeatmap", DefaultParameterSetName = BitmapParameterSet)]
[OutputType(typeof(string))]
public sealed class ShowDirtyHeatmapCommand : VfioCmdlet
{
    private const string BitmapParameterSet = "Bitmap";
    private const string ComparisonParameterSet = "Comparison";

    #region Parameters

    /// <summary>The bitmap from Get-DirtyBitmap or Import-DirtyBitmap.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = BitmapParameterSet)]
    public DirtyBitmap InputObject { get; set; } = null!;

    /// <summary>The result of Compare-DirtyBitmap: its combined bitmap is shown.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ComparisonParameterSet)]
    public DirtyBitmapComparison Comparison { get; set; } = null!;

    /// <summary>Characters per line; the console's width by default (80 where there is no console).</summary>
    [Parameter]
    [ValidateRange(32, 1024)]
    public int Width { get; set; }

    /// <summary>Rows of cells at most.</summary>
    [Parameter]
    [ValidateRange(1, 1000)]
    public int Height { get; set; } = 16;

    #endregion

    protected override void ProcessRecord()
    {
        var bitmap = ParameterSetName == ComparisonParameterSet ? Comparison.Result : InputObject;
        if (bitmap.Pages == 0)
        {
            WriteError(RuleError("The bitmap covers no page: there is nothing to show.", Core.ErrorIds.NothingToDraw, bitmap));
            return;
        }
        if (ParameterSetName == ComparisonParameterSet)
            WriteObject($"{Comparison.Operation} of two bitmaps: {Comparison.ResultDirtyPages} pages (reference {Comparison.ReferenceDirtyPages}, other {Comparison.DifferenceDirtyPages})");
        foreach (string line in DirtyHeatmap.RenderText(bitmap, Width > 0 ? Width : ConsoleWidth(), Height))
            WriteObject(line);
    }

    private int ConsoleWidth()
    {
        try
        {
            int w = Host?.UI?.RawUI?.WindowSize.Width ?? 0;
            // One column less than the window: a line that fills it exactly wraps on some terminals.
            return w >= 33 ? w - 1 : 80;
        }
        catch (Exception e) when (e is NotImplementedException or InvalidOperationException or System.IO.IOException or HostException)
        {
            return 80;
        }
    }
}
