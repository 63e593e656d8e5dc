/* P1's C references, built by the benchmark with gcc -O3 -march=native -shared into a library that the
 * benchmark calls through P/Invoke, in the same process as the C# code, interleaved with it.
 *
 * count_and_run_count: the set bits and the number of runs of a bitmap of n_words u64 words, one loop
 *   (the loop of the reference, ../shared/reference/bench/bitmap_ref.c: a run starts at a set bit
 *   whose lower neighbour is clear).
 * count_and_runs: the set bits, and every run written to two arrays (first bit, length), skipping zero
 *   words and crossing all-ones words a word at a time, transitions found with trailing-zero counts. */
#include <stdint.h>

void count_and_run_count(const uint64_t *w, uint64_t n_words, uint64_t *dirty, uint64_t *runs)
{
    uint64_t d = 0, r = 0, in_run = 0;
    for (uint64_t i = 0; i < n_words; i++) {
        uint64_t x = w[i];
        d += (uint64_t)__builtin_popcountll(x);
        r += (uint64_t)__builtin_popcountll(x & ~((x << 1) | in_run));
        in_run = x >> 63;
    }
    *dirty = d;
    *runs = r;
}

uint64_t count_and_runs(const uint64_t *w, uint64_t n_words, uint64_t *run_start, uint64_t *run_len, uint64_t *dirty)
{
    uint64_t k = 0, start = 0, d = 0;
    int in_run = 0;
    for (uint64_t i = 0; i < n_words; i++) {
        uint64_t x = w[i], base = i * 64;
        if (x == 0) { if (in_run) { run_start[k] = start; run_len[k++] = base - start; in_run = 0; } continue; }
        if (x == UINT64_MAX) { d += 64; if (!in_run) { start = base; in_run = 1; } continue; }
        d += (uint64_t)__builtin_popcountll(x);
        int bit = 0;
        while (bit < 64) {
            if (in_run) {
                uint64_t zeros = ~x >> bit;
                if (zeros == 0) break;
                bit += __builtin_ctzll(zeros);
                run_start[k] = start; run_len[k++] = base + (uint64_t)bit - start; in_run = 0;
            } else {
                uint64_t ones = x >> bit;
                if (ones == 0) break;
                bit += __builtin_ctzll(ones);
                start = base + (uint64_t)bit; in_run = 1;
            }
        }
    }
    if (in_run) { run_start[k] = start; run_len[k++] = n_words * 64 - start; }
    *dirty = d;
    return k;
}
