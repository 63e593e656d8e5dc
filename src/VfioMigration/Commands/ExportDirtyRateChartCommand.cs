using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Runtime.CompilerServices;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;
using VfioMigration.Pictures;

namespace VfioMigration.Commands;

/// <summary>Draws the samples of Measure-DirtyRate as a PNG chart: the dirty rate over time in pages/s and MiB/s.</summary>
[Cmdlet(VerbsData.Export, "DirtyRateChart", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(FileInfo))]
public sealed class ExportDirtyRateChartCommand : PictureCmdlet
{
    #region Parameters (and -Path, -Force, -PassThru from PictureCmdlet)

    /// <summary>The samples from Measure-DirtyRate; all the samples piped go into one chart.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public DirtyRateSample[] InputObject { get; set; } = null!;

    /// <summary>Width of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(400, 8192)]
    public int Width { get; set; } = 1000;

    /// <summary>Height of the picture in pixels.</summary>
    [Parameter]
    [ValidateRange(300, 8192)]
    public int Height { get; set; } = 600;

    #endregion

    private readonly List<DirtyRateSample> _samples = new();

    protected override void ProcessRecord()
    {
        foreach (var s in InputObject)
            if (s is not null) _samples.Add(s);
    }

    protected override void EndProcessing() => WritePicture($"Draw the dirty rate of {_samples.Count} sample(s)", _samples.Count);

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected override void Render(string path) => PictureFile.Write(path, Charts.DirtyRate(_samples, Width, Height).Png, Force);
}
