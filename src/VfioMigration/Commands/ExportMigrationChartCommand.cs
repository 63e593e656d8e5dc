using System.IO;
using System.Management.Automation;
using System.Runtime.CompilerServices;
using VfioMigration.Core.Migration;
using VfioMigration.Infrastructure;
using VfioMigration.Pictures;

namespace VfioMigration.Commands;

/// <summary>
/// Draws a migration from its report (Start-VfioMigration, Get-VfioMigration) as a PNG chart: bytes sent
/// and remaining per pre-copy round, the switchover, the stop-copy, and the downtime against the limit.
/// </summary>
[Cmdlet(VerbsData.Export, "MigrationChart", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(FileInfo))]
public sealed class ExportMigrationChartCommand : PictureCmdlet
{
    #region Parameters (and -Path, -Force, -PassThru from PictureCmdlet)

    /// <summary>The report from Start-VfioMigration or Get-VfioMigration.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public MigrationReport InputObject { get; set; } = null!;

    /// <summary>Width of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(400, 8192)]
    public int Width { get; set; } = 1000;

    /// <summary>Height of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(300, 8192)]
    public int Height { get; set; } = 600;

    #endregion

    protected override void ProcessRecord()
    {
        if (SecondObject("migration chart", InputObject)) return;
        WritePicture($"Draw the chart of the migration {InputObject.Source} -> {InputObject.Destination}", InputObject);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected override void Render(string path) => PictureFile.Write(path, Charts.Migration(InputObject, Width, Height).Png, Force);
}
