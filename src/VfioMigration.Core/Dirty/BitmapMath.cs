using System;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace VfioMigration.Core.Dirty;

/// <summary>Bit arithmetic on dirty bitmaps: u64 words, bit k of word k/64 = page k (little-endian, as the kernel).</summary>
public static class BitmapMath
{
    /// <summary>Set bits in the first <paramref name="bitCount"/> bits.</summary>
    public static ulong PopCount(ReadOnlySpan<ulong> words, ulong bitCount)
    {
        ulong full = bitCount / 64;
        ulong count = 0;
        var span = words.Slice(0, (int)full);
        int i = 0;
        if (Avx2.IsSupported && span.Length >= 64)
        {
            count = PopCountAvx2(span, out i);
        }
        // Four independent accumulators let the CPU overlap POPCNTs (one per cycle on x86).
        ulong c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (; i + 4 <= span.Length; i += 4)
        {
            c0 += (ulong)BitOperations.PopCount(span[i]);
            c1 += (ulong)BitOperations.PopCount(span[i + 1]);
            c2 += (ulong)BitOperations.PopCount(span[i + 2]);
            c3 += (ulong)BitOperations.PopCount(span[i + 3]);
        }
        for (; i < span.Length; i++) c0 += (ulong)BitOperations.PopCount(span[i]);
        count += c0 + c1 + c2 + c3;
        int rest = (int)(bitCount % 64);
        if (rest != 0) count += (ulong)BitOperations.PopCount(words[(int)full] & ((1UL << rest) - 1));
        return count;
    }

    /// <summary>
    /// Population count 32 bytes at a time (nibble lookup with PSHUFB, sums with PSADBW): it keeps up with
    /// memory bandwidth where one POPCNT per word does not. Returns the count and how many words it took.
    /// </summary>
    private static ulong PopCountAvx2(ReadOnlySpan<ulong> words, out int consumed)
    {
        var vectors = MemoryMarshal.Cast<ulong, Vector256<byte>>(words);
        var lookup = Vector256.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
        var low = Vector256.Create((byte)0x0f);
        var total = Vector256<ulong>.Zero;
        int v = 0;
        while (v < vectors.Length)
        {
            // Byte counts stay below 256 for up to 31 vectors (8 bits x 31 = 248) before they are widened.
            int end = Math.Min(vectors.Length, v + 31);
            var bytes = Vector256<byte>.Zero;
            for (; v < end; v++)
            {
                var x = vectors[v];
                var lo = Avx2.Shuffle(lookup, x & low);
                var hi = Avx2.Shuffle(lookup, Avx2.ShiftRightLogical(x.AsUInt16(), 4).AsByte() & low);
                bytes += lo + hi;
            }
            total += Avx2.SumAbsoluteDifferences(bytes, Vector256<byte>.Zero).AsUInt64();
        }
        consumed = vectors.Length * 4;
        return total.GetElement(0) + total.GetElement(1) + total.GetElement(2) + total.GetElement(3);
    }

    /// <summary>Words needed for <paramref name="bits"/> bits (the kernel's DIRTY_BITMAP_BYTES / 8).</summary>
    public static long WordsFor(ulong bits) => checked((long)((bits + 63) / 64));

    /// <summary>
    /// ORs <paramref name="bitCount"/> bits of <paramref name="source"/> (from bit 0) into
    /// <paramref name="destination"/> starting at bit <paramref name="destinationBit"/>.
    /// </summary>
    public static void OrBits(Span<ulong> destination, ulong destinationBit, ReadOnlySpan<ulong> source, ulong bitCount)
    {
        if (bitCount == 0) return;
        int shift = (int)(destinationBit % 64);
        int d = checked((int)(destinationBit / 64));
        int fullWords = (int)(bitCount / 64);
        int rest = (int)(bitCount % 64);
        if (shift == 0)
        {
            for (int i = 0; i < fullWords; i++) destination[d + i] |= source[i];
            if (rest != 0) destination[d + fullWords] |= source[fullWords] & ((1UL << rest) - 1);
            return;
        }
        int words = fullWords + (rest != 0 ? 1 : 0);
        for (int i = 0; i < words; i++)
        {
            ulong w = source[i];
            if (i == fullWords) w &= (1UL << rest) - 1;
            destination[d + i] |= w << shift;
            ulong carry = w >> (64 - shift);
            if (carry != 0) destination[d + i + 1] |= carry;
        }
    }

    /// <summary>
    /// Runs of set bits in the first <paramref name="bitCount"/> bits, as (first bit, length), skipping
    /// zero words and crossing all-ones words a word at a time.
    /// </summary>
    public static void ForEachRun(ReadOnlySpan<ulong> words, ulong bitCount, RunVisitor visitor)
    {
        ulong runStart = 0;
        bool inRun = false;
        int wordCount = (int)((bitCount + 63) / 64);
        for (int w = 0; w < wordCount; w++)
        {
            ulong word = words[w];
            if (w == wordCount - 1 && bitCount % 64 != 0) word &= (1UL << (int)(bitCount % 64)) - 1;
            ulong wordBase = (ulong)w * 64;
            if (word == 0)
            {
                if (inRun) { visitor(runStart, wordBase - runStart); inRun = false; }
                continue;
            }
            if (word == ulong.MaxValue)
            {
                if (!inRun) { runStart = wordBase; inRun = true; }
                continue;
            }
            int bit = 0;
            while (bit < 64)
            {
                if (inRun)
                {
                    // Find the first zero at or after bit.
                    ulong zeros = ~word >> bit;
                    if (zeros == 0) { bit = 64; break; }
                    bit += BitOperations.TrailingZeroCount(zeros);
                    visitor(runStart, wordBase + (ulong)bit - runStart);
                    inRun = false;
                }
                else
                {
                    ulong ones = word >> bit;
                    if (ones == 0) break;
                    bit += BitOperations.TrailingZeroCount(ones);
                    runStart = wordBase + (ulong)bit;
                    inRun = true;
                }
            }
        }
        if (inRun) visitor(runStart, bitCount - runStart);
    }

    /// <summary>Receives one run of set bits.</summary>
    public delegate void RunVisitor(ulong firstBit, ulong length);

    /// <summary>The words of a byte buffer the kernel filled (little-endian host).</summary>
    public static ReadOnlySpan<ulong> AsWords(ReadOnlySpan<byte> bytes) => MemoryMarshal.Cast<byte, ulong>(bytes);
}
