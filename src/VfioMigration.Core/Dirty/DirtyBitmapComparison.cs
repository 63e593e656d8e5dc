using System;

namespace VfioMigration.Core.Dirty;

/// <summary>How two bitmaps combine.</summary>
public enum DirtyBitmapOperation
{
    /// <summary>Pages dirty in either.</summary>
    Union,

    /// <summary>Pages dirty in both.</summary>
    Intersection,

    /// <summary>Pages dirty in the reference but not in the difference bitmap.</summary>
    Difference,
}

/// <summary>The result of combining two bitmaps of the same range, with the counts of each side.</summary>
public sealed class DirtyBitmapComparison
{
    public required DirtyBitmapOperation Operation { get; init; }

    public required Iova Iova { get; init; }

    public required ulong Size { get; init; }

    public required ulong PageSize { get; init; }

    public required ulong ReferenceDirtyPages { get; init; }

    public required ulong DifferenceDirtyPages { get; init; }

    /// <summary>Dirty pages of the result.</summary>
    public ulong ResultDirtyPages => Result.DirtyPages;

    /// <summary>The combined bitmap.</summary>
    public required DirtyBitmap Result { get; init; }

    /// <summary>Combines two bitmaps of the same range and page size.</summary>
    public static DirtyBitmapComparison Compare(DirtyBitmap reference, DirtyBitmap difference, DirtyBitmapOperation operation)
    {
        if (reference.Iova != difference.Iova || reference.Size != difference.Size || reference.PageSize != difference.PageSize)
            throw new VfioRuleException("BitmapsIncompatible",
                $"the bitmaps cover different ranges or pages ({reference.Iova}+0x{reference.Size:x} at 0x{reference.PageSize:x} against {difference.Iova}+0x{difference.Size:x} at 0x{difference.PageSize:x}); compare bitmaps of the same range.");
        var a = reference.GetWords();
        var b = difference.GetWords();
        var words = new ulong[a.Length];
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = operation switch
            {
                DirtyBitmapOperation.Union => a[i] | b[i],
                DirtyBitmapOperation.Intersection => a[i] & b[i],
                _ => a[i] & ~b[i],
            };
        }
        var scope = reference.Scope == difference.Scope ? reference.Scope : DirtyScope.AllMappedPages;
        return new DirtyBitmapComparison
        {
            Operation = operation,
            Iova = reference.Iova,
            Size = reference.Size,
            PageSize = reference.PageSize,
            ReferenceDirtyPages = reference.DirtyPages,
            DifferenceDirtyPages = difference.DirtyPages,
            Result = new DirtyBitmap(reference.Iova, reference.Size, reference.PageSize, words, scope, reference.HostKind, reference.Host,
                reference.Timestamp > difference.Timestamp ? reference.Timestamp : difference.Timestamp)
            {
                MappedRanges = reference.MappedRanges ?? difference.MappedRanges,
            },
        };
    }
}
