using System;
using System.IO;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Reads a dirty bitmap written by Export-DirtyBitmap, checking it is whole.</summary>
[Cmdlet(VerbsData.Import, "DirtyBitmap")]
[OutputType(typeof(DirtyBitmap))]
public sealed class ImportDirtyBitmapCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>Files to read.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    #endregion

    protected override void ProcessRecord()
    {
        foreach (string p in Path)
        {
            string path = GetUnresolvedProviderPathFromPSPath(p);
            try
            {
                WriteObject(DirtyBitmapFile.Read(path));
            }
            catch (InvalidDataException e)
            {
                WriteError(RuleError(e.Message, ErrorIds.BitmapFileInvalid, ErrorCategory.InvalidData, path));
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, path));
            }
        }
    }
}
