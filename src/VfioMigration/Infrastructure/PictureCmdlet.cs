using System;
using System.IO;
using System.Management.Automation;
using VfioMigration.Core;

namespace VfioMigration.Infrastructure;

/// <summary>
/// What the Export-* picture cmdlets share: writing one PNG per call the way Export-DirtyBitmap writes its
/// file (-Force to replace, -PassThru, -WhatIf), and loading the drawing code only when a picture is
/// drawn. The pictures assembly (VfioMigration.Pictures, with ScottPlot and SkiaSharp) is reached only
/// through <see cref="Render"/>, a method the runtime compiles at the first picture: importing the module
/// and every other cmdlet never load it, nor the native Skia library. When they are missing or do not
/// load, the user gets PictureLibraryMissing, not a loader's exception.
/// </summary>
public abstract class PictureCmdlet : VfioCmdlet
{
    private int _count;

    #region Parameters

    /// <summary>The PNG file to write.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Overwrite an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Return the file written.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    #endregion

    /// <summary>
    /// Draws the picture and writes it to <paramref name="path"/>. Implementations call the pictures
    /// assembly here and nowhere else, and carry [MethodImpl(MethodImplOptions.NoInlining)] so that the
    /// assembly loads when a picture is drawn, not when the cmdlet is.
    /// </summary>
    protected abstract void Render(string path);

    /// <summary>True (after writing OnePicturePerFile) when this is not the first object of the call.</summary>
    protected bool SecondObject(string what, object target)
    {
        if (++_count == 1) return false;
        WriteError(RuleError($"{MyInvocation.MyCommand.Name} writes one {what} per file; the further ones in the pipeline were not drawn. Export each to its own -Path.",
            ErrorIds.OnePicturePerFile, target));
        return true;
    }

    /// <summary>Asks ShouldProcess, draws, writes, and turns each failure into an ErrorRecord.</summary>
    protected void WritePicture(string description, object target)
    {
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        if (!ShouldProcess(path, description)) return;
        try
        {
            Render(path);
            if (PassThru) WriteObject(InvokeProvider.Item.Get(path), enumerateCollection: true);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, path));
        }
        catch (Exception e) when (MissingLibrary(e) is { } why)
        {
            WriteError(RuleError($"{MyInvocation.MyCommand.Name} cannot draw: {why} The module's folder ({Folder()}) should hold VfioMigration.Pictures.dll, ScottPlot.dll, SkiaSharp.dll and runtimes/linux-<arch>/native/libSkiaSharp.so: reinstall the module. Show-DirtyHeatmap draws in the terminal without them.",
                ErrorIds.PictureLibraryMissing, target));
        }
    }

    private static string Folder() => System.IO.Path.GetDirectoryName(typeof(PictureCmdlet).Assembly.Location) ?? "?";

    /// <summary>A loader's failure for the drawing code, in words; null for any other exception.</summary>
    private static string? MissingLibrary(Exception e) => e switch
    {
        FileNotFoundException f when IsDrawingAssembly(f.FileName) => $"the assembly {f.FileName} is missing.",
        FileLoadException f when IsDrawingAssembly(f.FileName) => $"the assembly {f.FileName} does not load ({f.Message}).",
        DllNotFoundException d => $"a native library does not load ({d.Message}).",
        TypeInitializationException { InnerException: { } inner } => MissingLibrary(inner),
        _ => null,
    };

    private static bool IsDrawingAssembly(string? name) =>
        name is not null && (name.StartsWith("VfioMigration.Pictures", StringComparison.Ordinal) || name.StartsWith("ScottPlot", StringComparison.Ordinal)
                             || name.StartsWith("SkiaSharp", StringComparison.Ordinal) || name.StartsWith("HarfBuzzSharp", StringComparison.Ordinal));
}
