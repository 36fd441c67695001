/* Roots of a live check (tests/live.rs): a thread blocked in read(2) on a pipe and a thread busy
 * in a loop each hold their only pointers to two blocks: one in a callee-saved register, one on
 * its stack. Prints `ready PID` when both hold them, then waits for a line on stdin; then wakes
 * the reader (which must get its byte, not EINTR), stops the busy thread, frees the four blocks
 * (a lost pointer would crash or show as a leak) and prints `ok`. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fds[2];
static volatile int stop;
static volatile int holding;
static volatile int read_ok;

__attribute__((noinline)) static void *block_of(size_t n, int fill) {
    void *p = malloc(n);
    memset(p, fill, n);
    return p;
}

/* Overwrites the dead frames below the caller's stack pointer (block_of's, which held the
 * pointers), so that only the register and the live stack slot hold them. */
__attribute__((noinline)) static void scrub(void) {
    volatile char buf[2048];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

static void *blocked_reader(void *arg) {
    (void)arg;
    register void *in_reg asm("r12") = block_of(48, 3);
    void *volatile on_stack = block_of(56, 4);
    scrub();
    asm volatile("" : "+r"(in_reg));
    __sync_fetch_and_add(&holding, 1);
    char c;
    ssize_t n = read(fds[0], &c, 1);
    read_ok = (n == 1 && c == 'x');
    if (n < 0)
        fprintf(stderr, "read failed: %s\n", strerror(errno));
    asm volatile("" : "+r"(in_reg));
    free(in_reg);
    free(on_stack);
    return NULL;
}

static void *busy_loop(void *arg) {
    (void)arg;
    register void *in_reg asm("r13") = block_of(40, 5);
    void *volatile on_stack = block_of(72, 6);
    scrub();
    asm volatile("" : "+r"(in_reg));
    __sync_fetch_and_add(&holding, 1);
    while (!stop)
        asm volatile("" : "+r"(in_reg));
    free(in_reg);
    free(on_stack);
    return NULL;
}

int main(void) {
    if (pipe(fds) != 0)
        return 2;
    pthread_t a, b;
    pthread_create(&a, NULL, blocked_reader, NULL);
    pthread_create(&b, NULL, busy_loop, NULL);
    while (holding < 2)
        usleep(1000);
    usleep(50000); /* the reader is in read(2) by now (a check before would find it running) */
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 2;
    if (write(fds[1], "x", 1) != 1)
        return 2;
    stop = 1;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf(read_ok ? "ok\n" : "read was broken\n");
    return read_ok ? 0 : 1;
}
