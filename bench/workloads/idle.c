/* A process to point `memcheck stats PID` at: it makes BLOCKS live allocations from a few call
 * sites, prints its pid, then waits until its standard input closes and frees everything. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static void *site_a(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *site_b(size_t n) { return calloc(1, n); }
__attribute__((noinline)) static void *site_c(size_t n) { return malloc(n * 3); }

int main(int argc, char **argv) {
    long blocks = argc > 1 ? atol(argv[1]) : 100000;
    void **p = malloc((size_t)blocks * sizeof *p);
    for (long i = 0; i < blocks; i++) {
        size_t n = 16 + (size_t)(i % 512);
        p[i] = i % 3 == 0 ? site_a(n) : i % 3 == 1 ? site_b(n) : site_c(n);
    }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    for (long i = 0; i < blocks; i++)
        free(p[i]);
    free(p);
    return 0;
}
