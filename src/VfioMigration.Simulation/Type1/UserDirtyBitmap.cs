using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation.Type1;

/// <summary>
/// Writes one mapping's dirty bits into a user bitmap exactly as update_user_bitmap() in
/// drivers/vfio/vfio_iommu_type1.c does: bits are relative to the request's iova; the mapping's bits start
/// at word (offset / 64); when the offset is not a multiple of 64 the kernel reads the user's word there
/// and ORs all of it into the first word it writes (so a caller that does not zero its buffer sees stale
/// bits); and it writes DIRTY_BITMAP_BYTES(nbits + shift) bytes: whole u64 words, the bits past the mapping
/// in the last word written as 0.
/// </summary>
internal static class UserDirtyBitmap
{
    /// <summary>Words produced and copied out at a time (64 KiB): a 32 MiB bitmap never exists in one piece.</summary>
    private const int ChunkWords = 8192;

    /// <summary>0, or -EFAULT when a copy from or to the user bitmap faults.</summary>
    public static int Update(ulong userBitmap, Type1Mapping mapping, ulong baseIova, int pgshift, bool allDirty)
    {
        ulong nbits = mapping.Size >> pgshift;
        ulong bitOffset = (mapping.Iova - baseIova) >> pgshift;
        ulong copyOffset = bitOffset / 64;
        ulong shift = bitOffset % 64;
        ulong totalBits = nbits + shift;
        ulong words = (totalBits + 63) / 64;

        ulong leftover = 0;
        if (shift != 0)
        {
            Span<byte> word = stackalloc byte[8];
            if (!UserMemory.CopyFromUser(word, userBitmap + copyOffset * 8)) return -Errno.EFAULT;
            leftover = BinaryPrimitives.ReadUInt64LittleEndian(word);
        }

        var runs = mapping.Dirty?.Pages.Runs;
        int run = 0;
        ulong[] buffer = ArrayPool<ulong>.Shared.Rent((int)Math.Min(words, ChunkWords));
        try
        {
            for (ulong w0 = 0; w0 < words; w0 += ChunkWords)
            {
                int n = (int)Math.Min(ChunkWords, words - w0);
                var span = buffer.AsSpan(0, n);
                span.Clear();
                ulong chunkFirst = w0 * 64, chunkEnd = chunkFirst + (ulong)n * 64;
                if (allDirty)
                {
                    SetBits(span, chunkFirst, Math.Max(shift, chunkFirst), Math.Min(totalBits, chunkEnd));
                }
                else if (runs is not null)
                {
                    // Runs are page numbers within the mapping; bit = page + shift.
                    while (run < runs.Count && runs[run].End + shift <= chunkFirst) run++;
                    for (int r = run; r < runs.Count && runs[r].Start + shift < chunkEnd; r++)
                        SetBits(span, chunkFirst, Math.Max(runs[r].Start + shift, chunkFirst), Math.Min(runs[r].End + shift, chunkEnd));
                }
                if (w0 == 0) span[0] |= leftover;
                if (!UserMemory.CopyToUser(userBitmap + (copyOffset + w0) * 8, MemoryMarshal.AsBytes(span)))
                    return -Errno.EFAULT;
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(buffer);
        }
        return 0;
    }

    /// <summary>Sets bits [from, to) (numbered from the chunk's <paramref name="chunkFirst"/>) in the chunk's words.</summary>
    private static void SetBits(Span<ulong> words, ulong chunkFirst, ulong from, ulong to)
    {
        if (to <= from) return;
        int a = (int)(from - chunkFirst), b = (int)(to - chunkFirst);
        int wa = a >> 6, wb = (b - 1) >> 6;
        ulong headMask = ulong.MaxValue << (a & 63);
        ulong tailMask = ulong.MaxValue >> (63 - ((b - 1) & 63));
        if (wa == wb)
        {
            words[wa] |= headMask & tailMask;
            return;
        }
        words[wa] |= headMask;
        words.Slice(wa + 1, wb - wa - 1).Fill(ulong.MaxValue);
        words[wb] |= tailMask;
    }
}
