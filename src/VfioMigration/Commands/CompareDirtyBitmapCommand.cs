using System;
using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Combines two dirty bitmaps of the same range: union, intersection or difference, with counts.</summary>
[Cmdlet(VerbsData.Compare, "DirtyBitmap")]
[OutputType(typeof(DirtyBitmapComparison))]
public sealed class CompareDirtyBitmapCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>The first bitmap.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public DirtyBitmap ReferenceBitmap { get; set; } = null!;

    /// <summary>The second bitmap (piped bitmaps are compared one by one).</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    public DirtyBitmap DifferenceBitmap { get; set; } = null!;

    /// <summary>How to combine them.</summary>
    [Parameter]
    public DirtyBitmapOperation Operation { get; set; } = DirtyBitmapOperation.Difference;

    #endregion

    protected override void ProcessRecord()
    {
        try
        {
            WriteObject(DirtyBitmapComparison.Compare(ReferenceBitmap, DifferenceBitmap, Operation));
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, DifferenceBitmap));
        }
    }
}
