/* A slow leak for `memcheck leaks --since-last` (tests/live.rs): one block leaked at start, then a
 * ticker thread leaks a block and prints `tick N` about once a second, while the main thread is
 * blocked in read(2) on stdin. When stdin ends: `done`, exit 0; `read interrupted` and exit 3 if
 * read failed with EINTR (the pause signal must not break it). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static void leak_at_start(void) {
    char *p = malloc(100);
    memset(p, 1, 100);
}

__attribute__((noinline)) static void leak_tick(void) {
    char *p = malloc(64);
    memset(p, 2, 64);
}

static void *ticker(void *arg) {
    (void)arg;
    for (int i = 0;; i++) {
        leak_tick();
        printf("tick %d\n", i);
        fflush(stdout);
        sleep(1); /* EINTR from a pause only shortens one tick */
    }
    return NULL;
}

int main(void) {
    leak_at_start();
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    char buf[64];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
    }
    if (n < 0) {
        printf("read interrupted: %s\n", strerror(errno));
        fflush(stdout);
        _exit(3);
    }
    flockfile(stdout);
    printf("done\n");
    fflush(stdout);
    _exit(0);
}
