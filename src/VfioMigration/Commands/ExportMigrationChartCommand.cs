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
    #region Parameters

    /// <summary>The report from Start-VfioMigration or Get-VfioMigration.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public MigrationReport InputObject { get; set; } = null!;

    /// <summary>The PNG file to write.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Width of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(400, 8192)]
    public int Width { get; set; } = 1000;

    /// <summary>Height of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(300, 8192)]
    public int Height { get; set; } = 600;

    /// <summary>Overwrite an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Return the file written.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    #endregion

    protected override string PicturePath => Path;

    protected override bool PassThruFile => PassThru;

    protected override void ProcessRecord()
    {
        if (SecondObject("migration chart", InputObject)) return;
        WritePicture($"Draw the chart of the migration {InputObject.Source} -> {InputObject.Destination}", InputObject);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected override void Render(string path) => PictureFile.Write(path, Charts.Migration(InputObject, Width, Height).Png, Force);
}
