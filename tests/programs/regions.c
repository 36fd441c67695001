/* A program with every kind of region: .data, a 4 MiB .bss (so it has an anonymous tail), a brk
 * heap, a thread (stack and malloc arena), and 8 MiB of anonymous memory, half touched, fenced by
 * PROT_NONE pages so it stays its own region. It prints its addresses and blocks until stdin
 * closes. With the argument `oom` it first sets its oom_score_adj to 1000.
 * Used by tests/inspect.rs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int initialized = 42;
static char big_bss[4 << 20];
static pthread_barrier_t ready;

static void *thread_main(void *arg) {
    (void)arg;
    volatile int local = 1;
    void *p = malloc(100);
    printf("thread %ld %p %p\n", (long)syscall(SYS_gettid), (void *)&local, p);
    fflush(stdout);
    pthread_barrier_wait(&ready);
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "oom") == 0) {
        FILE *f = fopen("/proc/self/oom_score_adj", "w");
        if (!f || fprintf(f, "1000\n") < 0 || fclose(f) != 0) return 3;
    }
    volatile int local = 2;
    void *h = malloc(1000);
    size_t len = 8 << 20, page = 4096;
    char *base = mmap(NULL, len + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return 4;
    mprotect(base, page, PROT_NONE);
    mprotect(base + page + len, page, PROT_NONE);
    char *m = base + page;
    madvise(m, len, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < len / 2; i += page) m[i] = 1;
    big_bss[0] = 1;
    pthread_barrier_init(&ready, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_barrier_wait(&ready);
    printf("main %ld %p %p %p %p %p %p %p\n", (long)getpid(), (void *)&local, h, (void *)&initialized,
           (void *)(big_bss + (2 << 20)), (void *)m, (void *)main, sbrk(0));
    fflush(stdout);
    char buf[1];
    while (read(0, buf, 1) > 0) {}
    return 0;
}
