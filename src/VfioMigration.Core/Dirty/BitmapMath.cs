using System;
using System.Numerics;
using System.Runtime.CompilerServices;
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
    // AggressiveOptimization: ReadyToRun code that uses Vector256 is refused by a runtime on a CPU with other
    // vector extensions than the image was compiled for (this machine's AVX-512), so these loops are
    // compiled at run time in any case; this way they are compiled optimized at their first call instead of
    // running a 32 MiB bitmap through unoptimized code until on-stack replacement (the first query of a
    // session took 7 ms to count where a repeated one takes 1.7).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    /// <summary>
    /// Set bits and runs of set bits in the first <paramref name="bitCount"/> bits, in one pass: a run starts
    /// at a set bit whose lower neighbour is clear, so the runs are the population count of
    /// <c>x &amp; ~((x &lt;&lt; 1) | carry)</c>. With AVX2, 32 bytes of both at a time.
    /// </summary>
    public static (ulong Bits, ulong Runs) CountBitsAndRuns(ReadOnlySpan<ulong> words, ulong bitCount)
    {
        int full = (int)(bitCount / 64);
        ulong bits = 0, runs = 0;
        int i = 0;
        if (Avx2.IsSupported && full >= 64)
        {
            // The first word has no lower neighbour in the bitmap (carry 0): done scalar, then vectors.
            ulong w0 = words[0];
            bits += (ulong)BitOperations.PopCount(w0);
            runs += (ulong)BitOperations.PopCount(w0 & ~(w0 << 1));
            (ulong b, ulong r) = CountBitsAndRunsAvx2(words.Slice(0, full), out i);
            bits += b;
            runs += r;
        }
        ulong carry = i == 0 ? 0 : words[i - 1] >> 63;
        for (; i < full; i++)
        {
            ulong x = words[i];
            bits += (ulong)BitOperations.PopCount(x);
            runs += (ulong)BitOperations.PopCount(x & ~((x << 1) | carry));
            carry = x >> 63;
        }
        int rest = (int)(bitCount % 64);
        if (rest != 0)
        {
            ulong x = words[full] & ((1UL << rest) - 1);
            bits += (ulong)BitOperations.PopCount(x);
            runs += (ulong)BitOperations.PopCount(x & ~((x << 1) | carry));
        }
        return (bits, runs);
    }

    /// <summary>Words 1.. of <paramref name="words"/> four at a time; returns the index after the last word counted.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (ulong Bits, ulong Runs) CountBitsAndRunsAvx2(ReadOnlySpan<ulong> words, out int next)
    {
        var lookup = Vector256.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
        var low = Vector256.Create((byte)0x0f);
        var totalBits = Vector256<ulong>.Zero;
        var totalRuns = Vector256<ulong>.Zero;
        int i = 1;
        while (i + 4 <= words.Length)
        {
            // Byte counts stay below 256 for 31 rounds (8 bits each) before they are widened.
            var byteBits = Vector256<byte>.Zero;
            var byteRuns = Vector256<byte>.Zero;
            for (int round = 0; round < 31 && i + 4 <= words.Length; round++, i += 4)
            {
                var v = Vector256.Create(words.Slice(i, 4));
                var lower = Vector256.Create(words.Slice(i - 1, 4));
                var starts = v & ~(Vector256.ShiftLeft(v, 1) | Vector256.ShiftRightLogical(lower, 63));
                byteBits += Nibbles(v.AsByte(), lookup, low);
                byteRuns += Nibbles(starts.AsByte(), lookup, low);
            }
            totalBits += Avx2.SumAbsoluteDifferences(byteBits, Vector256<byte>.Zero).AsUInt64();
            totalRuns += Avx2.SumAbsoluteDifferences(byteRuns, Vector256<byte>.Zero).AsUInt64();
        }
        next = i;
        return (Vector256.Sum(totalBits), Vector256.Sum(totalRuns));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Nibbles(Vector256<byte> x, Vector256<byte> lookup, Vector256<byte> low) =>
        Avx2.Shuffle(lookup, x & low) + Avx2.Shuffle(lookup, Avx2.ShiftRightLogical(x.AsUInt16(), 4).AsByte() & low);

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

    /// <summary>The words of a byte buffer the kernel filled (little-endian host).</summary>
    public static ReadOnlySpan<ulong> AsWords(ReadOnlySpan<byte> bytes) => MemoryMarshal.Cast<byte, ulong>(bytes);
}

/// <summary>A run of set bits: its first bit and its length in bits.</summary>
public readonly record struct BitRun(ulong FirstBit, ulong Length);

/// <summary>
/// Finds the runs of set bits of a bitmap in one scan and counts its set bits on the way, a batch at a
/// time: <see cref="Read"/> fills a caller's buffer and picks up where it stopped, so runs can be streamed
/// in bounded memory. Long stretches of zero words (outside a run) and of all-ones words (inside one) are
/// skipped with vectorised searches (IndexOfAnyExcept uses Vector512/256/128 where the CPU has them);
/// a word with both is walked with trailing-zero counts, one step per transition. No callback per run.
/// </summary>
public sealed class BitRunScanner
{
    private readonly ulong _bits;
    private readonly int _words;
    private readonly int _fullWords;
    private int _w;
    private int _bit;
    private bool _entered;
    private bool _inRun;
    private ulong _runStart;

    /// <param name="bitCount">Bits of the bitmap to scan (bits past it in the last word are ignored).</param>
    public BitRunScanner(ulong bitCount)
    {
        _bits = bitCount;
        _words = checked((int)((bitCount + 63) / 64));
        _fullWords = (int)(bitCount / 64);
    }

    /// <summary>Set bits passed so far; once <see cref="Done"/>, the bitmap's population count.</summary>
    public ulong SetBits { get; private set; }

    /// <summary>The whole bitmap was scanned and every run returned.</summary>
    public bool Done { get; private set; }

    /// <summary>
    /// Writes the next runs of <paramref name="words"/> (the same bitmap every call) into
    /// <paramref name="output"/>; returns how many. Fewer than the buffer holds only at the end (0 once done).
    /// </summary>
    public int Read(ReadOnlySpan<ulong> words, Span<BitRun> output)
    {
        if (output.Length == 0) return 0;
        // The state lives in locals while scanning (registers, not fields) and is stored back on return.
        int n = 0, w = _w, bit = _bit;
        bool entered = _entered, inRun = _inRun;
        ulong runStart = _runStart, setBits = SetBits;
        words = words.Slice(0, _words);
        ref BitRun first = ref MemoryMarshal.GetReference(output);
        while (true)
        {
            if (w >= _words)
            {
                if (inRun)
                {
                    output[n++] = new BitRun(runStart, _bits - runStart);
                    inRun = false;
                }
                Done = true;
                break;
            }
            ulong word;
            if (!entered)
            {
                // At a word boundary. A word that continues the current state (zero outside a run, all ones
                // inside) starts a stretch that is skipped in bulk; a mixed word goes straight to its walk.
                if (w < _fullWords)
                {
                    ulong same = inRun ? ulong.MaxValue : 0UL;
                    if (words[w] == same)
                    {
                        var rest = words.Slice(w, _fullWords - w);
                        int skip = rest.IndexOfAnyExcept(same);
                        if (skip < 0) skip = rest.Length;
                        if (inRun) setBits += (ulong)skip * 64;
                        w += skip;
                        if (w >= _words) continue;
                    }
                }
                entered = true;
                word = Word(words, w);
                setBits += (ulong)BitOperations.PopCount(word);
            }
            else
            {
                word = Word(words, w);
            }
            ulong wordBase = (ulong)w * 64;
            // Every transition of this word at or after bit: where a bit differs from the one below it (below
            // bit 0, the state the word was entered in). Each is one trailing-zero count and one clear of the
            // lowest bit.
            ulong transitions = (word ^ ((word << 1) | (inRun ? 1UL : 0UL))) & (ulong.MaxValue << bit);
            if (inRun && transitions != 0)
            {
                // The first transition ends the run the word was entered in.
                int end = BitOperations.TrailingZeroCount(transitions);
                transitions &= transitions - 1;
                // n < output.Length holds here (checked after every write): no bounds check per run.
                Unsafe.Add(ref first, n++) = new BitRun(runStart, wordBase + (ulong)end - runStart);
                inRun = false;
                if (n == output.Length) { bit = end + 1; goto stop; }
            }
            // Outside a run the transitions come in pairs, a start and its end, so the loop asks no question
            // about the state per transition (on a random bitmap that question was a mispredicted branch each
            // time); an odd one out starts a run that goes on into the next word.
            while (transitions != 0)
            {
                int start = BitOperations.TrailingZeroCount(transitions);
                transitions &= transitions - 1;
                if (transitions == 0)
                {
                    runStart = wordBase + (ulong)start;
                    inRun = true;
                    break;
                }
                int end = BitOperations.TrailingZeroCount(transitions);
                transitions &= transitions - 1;
                Unsafe.Add(ref first, n++) = new BitRun(wordBase + (ulong)start, (ulong)(end - start));
                if (n == output.Length) { bit = end + 1; goto stop; }
            }
            w++;
            bit = 0;
            entered = false;
            continue;
        stop:
            // The buffer is full right after a run's end at bit - 1: go on from the bit after it.
            if (bit == 64) { w++; bit = 0; entered = false; }
            goto full;
        }
    full:
        (_w, _bit, _entered, _inRun, _runStart, SetBits) = (w, bit, entered, inRun, runStart, setBits);
        return n;
    }

    /// <summary>Word <paramref name="w"/>, with the bits past the bitmap's end cleared.</summary>
    private ulong Word(ReadOnlySpan<ulong> words, int w)
    {
        ulong word = words[w];
        if (w == _fullWords) word &= (1UL << (int)(_bits % 64)) - 1;
        return word;
    }
}

