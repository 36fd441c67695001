/* Multithreaded allocation churn: each thread keeps a pool of live slots and does a fixed number
 * of random operations on them (malloc, calloc, realloc, free) with sizes from 8 B to 64 KiB,
 * drawn log-uniformly from a fixed-seed generator, so every run does exactly the same work.
 *
 *   churn THREADS OPS_PER_THREAD [SLOTS]
 *
 * At the end each thread frees its pool except LEAK_PER_THREAD blocks, whose pointers it drops
 * (definitely lost: the same totals every run, for the leak comparison with Valgrind).
 * Prints one line: threads, ops, allocation calls and the loop's own time, for throughput. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAK_PER_THREAD 4

static long ops_per_thread;
static int slots_per_thread = 1024;

struct result {
    uint64_t allocs;
    uint64_t checksum;
};

static inline uint64_t next(uint64_t *s) {
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* log-uniform in [8, 65536]: a power of two from 2^3..2^15, then uniform within it */
static size_t pick_size(uint64_t *s) {
    uint64_t r = next(s);
    unsigned shift = 3 + (unsigned)(r % 13);
    size_t lo = (size_t)1 << shift;
    return lo + (size_t)((r >> 8) % lo);
}

static void touch(unsigned char *p, size_t n, unsigned char v) {
    p[0] = v;
    p[n - 1] = v;
    if (n >= 64)
        memset(p + n / 2 - 16, v, 32);
}

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
    struct result *res = malloc(sizeof *res);
    res->allocs = 0;
    res->checksum = 0;
    unsigned char **slot = calloc((size_t)slots_per_thread, sizeof *slot);
    size_t *len = calloc((size_t)slots_per_thread, sizeof *len);
    for (long op = 0; op < ops_per_thread; op++) {
        uint64_t r = next(&seed);
        int i = (int)(r % (uint64_t)slots_per_thread);
        unsigned kind = (unsigned)((r >> 32) % 8);
        if (slot[i] == NULL) {
            size_t n = pick_size(&seed);
            if (kind < 2) {
                slot[i] = calloc(1, n);
                res->checksum += slot[i][n / 2];
            } else {
                slot[i] = malloc(n);
            }
            touch(slot[i], n, (unsigned char)op);
            len[i] = n;
            res->allocs++;
        } else if (kind < 2) {
            size_t n = pick_size(&seed);
            unsigned char *q = realloc(slot[i], n);
            if (!q)
                abort();
            slot[i] = q;
            touch(q, n, (unsigned char)op);
            len[i] = n;
            res->allocs++;
        } else {
            res->checksum += slot[i][len[i] - 1];
            free(slot[i]);
            slot[i] = NULL;
        }
    }
    int leaked = 0;
    for (int i = 0; i < slots_per_thread; i++) {
        if (slot[i] == NULL)
            continue;
        if (leaked < LEAK_PER_THREAD) {
            /* drop the pointer: a definite leak of a known size */
            leaked++;
            unsigned char *q = realloc(slot[i], 100);
            q[0] = 1;
            slot[i] = NULL;
            continue;
        }
        free(slot[i]);
        slot[i] = NULL;
    }
    free(slot);
    free(len);
    return res;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS OPS_PER_THREAD [SLOTS]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[1]);
    ops_per_thread = atol(argv[2]);
    if (argc > 3)
        slots_per_thread = atoi(argv[3]);
    if (threads < 1 || threads > 64 || ops_per_thread < 1 || slots_per_thread < 8)
        return 2;
    pthread_t tid[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long t = 0; t < threads; t++)
        pthread_create(&tid[t], NULL, worker, (void *)t);
    uint64_t allocs = 0, sum = 0;
    for (int t = 0; t < threads; t++) {
        void *rv;
        pthread_join(tid[t], &rv);
        struct result *res = rv;
        allocs += res->allocs;
        sum += res->checksum;
        free(res);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("churn threads=%d ops=%ld allocs=%llu loop_ns=%.0f checksum=%llu\n", threads,
           ops_per_thread * threads, (unsigned long long)allocs, ns, (unsigned long long)sum);
    return 0;
}
