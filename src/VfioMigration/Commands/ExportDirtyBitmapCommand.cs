using System;
using System.IO;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Saves a dirty bitmap to a file, losslessly, with its metadata (Import-DirtyBitmap reads it back).</summary>
[Cmdlet(VerbsData.Export, "DirtyBitmap", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(FileInfo))]
public sealed class ExportDirtyBitmapCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>The bitmap from Get-DirtyBitmap.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public DirtyBitmap InputObject { get; set; } = null!;

    /// <summary>The file to write.</summary>
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

    private int _count;

    protected override void ProcessRecord()
    {
        if (++_count > 1)
        {
            WriteError(RuleError("Export-DirtyBitmap writes one bitmap per file; the further bitmaps in the pipeline were not written. Export each to its own -Path.",
                ErrorIds.OneBitmapPerFile, ErrorCategory.InvalidOperation, InputObject));
            return;
        }
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        if (!ShouldProcess(path, $"Write the dirty bitmap {InputObject}")) return;
        try
        {
            DirtyBitmapFile.Write(InputObject, path, replace: Force);
            // Through the provider, so the object carries PowerShell's file members and formats as Get-Item's.
            if (PassThru) WriteObject(InvokeProvider.Item.Get(path), enumerateCollection: true);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, path));
        }
    }
}
