/* Cost of the checked memory and string functions (`--check-mem-functions`): N rounds over a
 * pool of heap strings of 8-200 bytes, each round a strlen, strcmp, memcpy, strcpy, strcat,
 * memchr and memset on heap blocks; then N rounds of strlen and memcpy on strings that are not
 * on the heap (a static and a stack buffer), which the checks answer with one load. Prints the
 * two loops' own times per call, so start-up and the exit checks are not counted. Run it
 * natively and under memcheck with the checks on and off.
 *
 *   strings N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL 256
static volatile unsigned long sink;
static char static_str[] = "a string that is not on the heap, 48 bytes long";

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* noinline and volatile lengths: every call below is a real call of the libc function. */
__attribute__((noinline)) static void heap_loop(char **s, size_t *len, char *buf, long n) {
    for (long i = 0; i < n; i++) {
        char *a = s[i % POOL], *b = s[(i * 7 + 3) % POOL];
        size_t la = strlen(a);
        sink += la + (unsigned long)strcmp(a, b);
        memcpy(buf, a, len[i % POOL] + 1);
        strcpy(buf + 256, b);
        strcat(buf + 256, "-x");
        sink += (unsigned long)memchr(buf, 'q', la);
        memset(buf + 512, (int)i, la);
    }
}

__attribute__((noinline)) static void static_loop(char *stack, long n) {
    for (long i = 0; i < n; i++) {
        size_t l = strlen(static_str);
        memcpy(stack, static_str, l + 1);
        sink += l + strlen(stack);
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    char *s[POOL];
    size_t len[POOL];
    for (int i = 0; i < POOL; i++) {
        len[i] = 8 + (size_t)(i * 37) % 192;
        s[i] = malloc(len[i] + 1);
        for (size_t j = 0; j < len[i]; j++)
            s[i][j] = (char)('a' + (i + j) % 26);
        s[i][len[i]] = 0;
    }
    char *buf = malloc(1024);
    char stack[64];
    heap_loop(s, len, buf, 1000); /* warm up */
    double t0 = now_ns();
    heap_loop(s, len, buf, n);
    double t1 = now_ns();
    static_loop(stack, n);
    double t2 = now_ns();
    /* 7 checked calls per heap round, 3 per static round */
    printf("strings n=%ld heap_ns_per_call=%.2f static_ns_per_call=%.2f\n", n, (t1 - t0) / (7.0 * n),
           (t2 - t1) / (3.0 * n));
    for (int i = 0; i < POOL; i++)
        free(s[i]);
    free(buf);
    return 0;
}
