/* P1 reference: the same work as DirtyBitmap's summary and run enumeration, in C at -O3.
 * Reads a bitmap file of little-endian u64 words, counts set bits and contiguous runs, and prints the
 * best time of N rounds in nanoseconds. Built and run by the benchmark on the same machine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: bitmap_scan FILE ROUNDS\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n = (size_t)bytes / 8;
    uint64_t *w = malloc((size_t)bytes);
    if (!w || fread(w, 8, n, f) != n) { fprintf(stderr, "read failed\n"); return 1; }
    fclose(f);
    int rounds = atoi(argv[2]);
    /* size the run arrays with an untimed count of run starts (a set bit after a clear one) */
    uint64_t max_runs = 1, carry = 0;
    for (size_t i = 0; i < n; i++) { max_runs += (uint64_t)__builtin_popcountll(w[i] & ~((w[i] << 1) | carry)); carry = w[i] >> 63; }
    uint64_t *run_start = malloc(max_runs * 8), *run_len = malloc(max_runs * 8);
    if (!run_start || !run_len) { fprintf(stderr, "out of memory\n"); return 1; }
    uint64_t best_pop = UINT64_MAX, best_runs = UINT64_MAX, pop = 0, runs = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = now_ns();
        uint64_t c = 0;
        for (size_t i = 0; i < n; i++) c += (uint64_t)__builtin_popcountll(w[i]);
        uint64_t t1 = now_ns();
        /* runs of set bits as (first bit, length) pairs, skipping zero words and crossing
         * all-ones words a word at a time: the algorithm of BitmapMath.ForEachRun */
        uint64_t k = 0, start = 0;
        int in_run = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = w[i], base = (uint64_t)i * 64;
            if (x == 0) { if (in_run) { run_start[k] = start; run_len[k++] = base - start; in_run = 0; } continue; }
            if (x == UINT64_MAX) { if (!in_run) { start = base; in_run = 1; } continue; }
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
        if (in_run) { run_start[k] = start; run_len[k++] = (uint64_t)n * 64 - start; }
        uint64_t t2 = now_ns();
        if (t1 - t0 < best_pop) best_pop = t1 - t0;
        if (t2 - t1 < best_runs) best_runs = t2 - t1;
        pop = c;
        runs = k;
    }
    printf("%llu %llu %llu %llu\n", (unsigned long long)pop, (unsigned long long)runs,
           (unsigned long long)best_pop, (unsigned long long)best_runs);
    free(w);
    free(run_start);
    free(run_len);
    return 0;
}
