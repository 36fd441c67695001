/* Issue 13's guard-mode and crash shortfalls, one per mode (argv[1]); each bad access sits on a
 * line with a marker comment. "args" prints what each bad allocation call returned, so a run
 * under memcheck can be compared with a native one. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *volatile sink;
volatile int vsink;

__attribute__((noinline)) char *make(size_t n)
{
    return malloc(n); /* MAKE-HERE */
}

/* A 1-byte overread of a 10-byte block. */
__attribute__((noinline)) int overread(void)
{
    char *p = make(10);
    memset(p, 1, 10);
    int v = ((volatile char *)p)[10]; /* OVERREAD-HERE */
    free(p);
    return v;
}

/* A 4-byte read straddling the end of a 10-byte block. */
__attribute__((noinline)) int straddle(void)
{
    char *p = make(10);
    memset(p, 1, 10);
    int v = *(volatile int *)(p + 8); /* STRADDLE-HERE */
    free(p);
    return v;
}

/* A 1-byte write past a 42-byte block. */
__attribute__((noinline)) void write42(void)
{
    char *p = make(42);
    ((volatile char *)p)[42] = 'x'; /* WRITE42-HERE */
    free(p);
}

/* A read 4,000 bytes before a 1 MiB block. */
__attribute__((noinline)) int far_underflow(void)
{
    char *p = make(1 << 20);
    int v = ((volatile char *)p)[-4000]; /* FAR-UNDERFLOW-HERE */
    free(p);
    return v;
}

/* A write 4,000 bytes before a 1 MiB block. */
__attribute__((noinline)) void far_underflow_write(void)
{
    char *p = make(1 << 20);
    ((volatile char *)p)[-4000] = 'w'; /* FAR-UNDERFLOW-WRITE-HERE */
    free(p);
}

/* An underflow that writes back the byte it read: the canary stays intact. */
__attribute__((noinline)) void writeback(void)
{
    char *p = make(32);
    volatile char *q = p;
    q[-1] = q[-1]; /* WRITEBACK-HERE */
    free(p);
}

volatile int two = 2;

/* Two blocks from one site (a loop the compiler cannot unroll into two sites), each underflowed
 * by a write. */
__attribute__((noinline)) void two_underflows(void)
{
    for (int i = 0; i < two; i++) {
        char *p = make(24);
        ((volatile char *)p)[-2] = 'u'; /* TWO-UNDERFLOWS-HERE */
        free(p); /* TWO-UNDERFLOWS-FREE */
    }
}

/* A 3-byte overflow of a 13-byte block, found at free: the whole range is reported. */
__attribute__((noinline)) void range(void)
{
    char *p = make(13);
    for (int i = 13; i < 16; i++)
        ((volatile char *)p)[i] = 'r';
    free(p); /* RANGE-FREE-HERE */
}

/* An overflow of block a that runs on into the left redzone of the block after it, b; b is
 * freed first. */
__attribute__((noinline)) void contiguous(void)
{
    char *a = make(24);
    char *b = make(24);
    long gap = b - a;
    printf("gap %ld\n", gap);
    /* Up to 4 bytes into b's left redzone (16 bytes before b). */
    for (long i = 24; i < gap - 12; i++)
        ((volatile char *)a)[i] = 'A';
    free(b); /* CONTIGUOUS-FREE-B */
    free(a);
}

/* realloc of a pointer into the middle of a live block. */
__attribute__((noinline)) void realloc_interior(void)
{
    char *p = make(40);
    sink = realloc(p + 8, 10); /* REALLOC-INTERIOR-HERE */
    free(p);
}

static sigjmp_buf env;

static void on_segv(int sig)
{
    (void)sig;
    siglongjmp(env, 1);
}

/* The far underflow under the program's own SIGSEGV handler, which keeps priority. */
__attribute__((noinline)) void handled(void)
{
    signal(SIGSEGV, on_segv);
    if (sigsetjmp(env, 1) == 0)
        vsink = far_underflow();
    else
        printf("handled\n");
}

static void said(const char *what, void *p)
{
    printf("%s %s %d\n", what, p ? "non-null" : "null", p ? 0 : errno);
    free(p);
    errno = 0;
}

/* Allocation arguments ASan calls allocation-size-too-big. */
__attribute__((noinline)) void args(void)
{
    size_t big = ((size_t)1 << 40) + 1;
    errno = 0;
    said("malloc", malloc(big)); /* MALLOC-BIG-HERE */
    said("pvalloc", pvalloc(SIZE_MAX)); /* PVALLOC-HERE */
    said("valloc", valloc(SIZE_MAX - 100)); /* VALLOC-HERE */
    said("aligned_alloc", aligned_alloc(64, SIZE_MAX - 10)); /* ALIGNED-ALLOC-HERE */
    said("reallocarray", reallocarray(NULL, 2, SIZE_MAX / 2 + 1)); /* REALLOCARRAY-HERE */
    void *p = NULL;
    int r = posix_memalign(&p, 64, SIZE_MAX - 10); /* POSIX-MEMALIGN-HERE */
    printf("posix_memalign %d\n", r);
    said("malloc-2M", malloc(2 << 20)); /* MALLOC-2M-HERE */
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(m, "overread")) vsink = overread();
    else if (!strcmp(m, "straddle")) vsink = straddle();
    else if (!strcmp(m, "write42")) write42();
    else if (!strcmp(m, "far-underflow")) vsink = far_underflow();
    else if (!strcmp(m, "far-underflow-write")) far_underflow_write();
    else if (!strcmp(m, "writeback")) writeback();
    else if (!strcmp(m, "two-underflows")) two_underflows();
    else if (!strcmp(m, "range")) range();
    else if (!strcmp(m, "contiguous")) contiguous();
    else if (!strcmp(m, "realloc-interior")) realloc_interior();
    else if (!strcmp(m, "args")) args();
    else if (!strcmp(m, "handled")) handled();
    else {
        fprintf(stderr, "unknown mode %s\n", m);
        return 2;
    }
    printf("survived\n");
    return 0;
}
