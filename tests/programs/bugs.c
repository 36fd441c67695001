/* One heap bug per mode (argv[1]); each bad access sits on a line with a marker comment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

char *volatile sink;

__attribute__((noinline)) char *make(size_t n)
{
    return malloc(n); /* ALLOC-HERE */
}

__attribute__((noinline)) void overflow(void)
{
    char *p = make(13);
    ((volatile char *)p)[13] = 'x'; /* OVERFLOW-HERE */
    free(p);
}

__attribute__((noinline)) void underflow(void)
{
    char *p = make(13);
    ((volatile char *)p)[-1] = 'x'; /* UNDERFLOW-HERE */
    free(p);
}

__attribute__((noinline)) int uaf_read(void)
{
    char *p = make(32);
    memset(p, 1, 32);
    free(p); /* FREE-HERE */
    return ((volatile char *)p)[5]; /* UAF-READ-HERE */
}

__attribute__((noinline)) void uaf_write(void)
{
    char *p = make(32);
    free(p); /* FREE-HERE */
    ((volatile char *)p)[7] = 9; /* UAF-WRITE-HERE */
}

__attribute__((noinline)) void double_free(void)
{
    char *p = make(24);
    free(p); /* FREE-HERE */
    free(p); /* DOUBLE-FREE-HERE */
}

__attribute__((noinline)) void invalid_free(void)
{
    static char not_heap[16];
    free(not_heap); /* INVALID-FREE-HERE */
}

__attribute__((noinline)) void invalid_free_middle(void)
{
    char *p = make(40);
    free(p + 8); /* MIDDLE-FREE-HERE */
    free(p);
}

__attribute__((noinline)) void invalid_realloc(void)
{
    char *p = make(8);
    free(p); /* FREE-HERE */
    sink = realloc(p, 64); /* REALLOC-HERE */
}

__attribute__((noinline)) void overflow_to_guard(void)
{
    char *p = make(16);
    ((volatile char *)p)[16] = 'x'; /* GUARD-OVERFLOW-HERE */
    free(p);
}

__attribute__((noinline)) void many_live_blocks(int n)
{
    char **v = malloc(n * sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i] = malloc(32);
        v[i][0] = (char)i;
    }
    long sum = 0;
    for (int i = 0; i < n; i++) {
        sum += v[i][0];
        free(v[i]);
    }
    free(v);
    printf("%d blocks, sum %ld\n", n, sum);
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "overflow")) overflow();
    else if (!strcmp(m, "underflow")) underflow();
    else if (!strcmp(m, "uaf-read")) printf("%d\n", uaf_read());
    else if (!strcmp(m, "uaf-write")) uaf_write();
    else if (!strcmp(m, "double-free")) double_free();
    else if (!strcmp(m, "invalid-free")) invalid_free();
    else if (!strcmp(m, "invalid-free-middle")) invalid_free_middle();
    else if (!strcmp(m, "invalid-realloc")) invalid_realloc();
    else if (!strcmp(m, "overflow-to-guard")) overflow_to_guard();
    else if (!strcmp(m, "many")) many_live_blocks(argc > 2 ? atoi(argv[2]) : 70000);
    else if (!strcmp(m, "fresh-byte")) { unsigned char *p = malloc(8); printf("fresh %d\n", p[3]); free(p); }
    else if (!strcmp(m, "mallopt-perturb")) {
        mallopt(-6 /* M_PERTURB */, 0x11);
        unsigned char *p = malloc(8);
        printf("fresh %d\n", p[3]);
        free(p);
    }
    else { fprintf(stderr, "unknown mode\n"); return 2; }
    puts("survived");
    return 0;
}
