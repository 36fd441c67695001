/* The cost of one allocation+free pair: N malloc/free pairs of 32 bytes made from a call depth of
 * DEPTH (default 10) noinline frames. Prints the loop's own time, so start-up and the exit-time
 * leak check are not counted. bench/run runs it natively (glibc's pair), under memcheck's default
 * mode and under configurations that each remove one more part (--num-callers=1,
 * --quarantine-size=0, no fills, --check-mem-functions=no), at depth 4 (a frame's cost), in
 * production mode and rebuilt with -fsanitize=address: the differences are the parts
 * (docs/benchmark.md).
 *
 *   btcost N [DEPTH] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void loop(long n) {
    for (long i = 0; i < n; i++) {
        void *p = malloc(32);
        sink += (unsigned long)p;
        free(p);
    }
}

__attribute__((noinline)) static void descend(int depth, long n) {
    if (depth <= 1)
        loop(n);
    else
        descend(depth - 1, n);
    sink++; /* not a tail call: every level keeps a real frame */
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int depth = argc > 2 ? atoi(argv[2]) : 10;
    struct timespec t0, t1;
    descend(2, 1000); /* warm up */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    descend(depth - 1, n); /* main is the depth-th frame */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("btcost n=%ld depth=%d loop_ns=%.0f ns_per_op=%.2f\n", n, depth, ns, ns / (double)n);
    return 0;
}
