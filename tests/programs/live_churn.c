/* Threads that allocate and free without pause, so a live check's signal mostly finds them inside
 * memcheck's library (tests/live.rs): each keeps 64 live blocks in an array on its stack and
 * replaces one at random, in a loop. Prints `ready PID` once every thread holds its 64, waits for
 * a line on stdin, stops the threads, frees everything and prints `ok`. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS 3
static volatile int stop;
static volatile int filled;

static void *churn(void *arg) {
    void *slots[64] = {0};
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 64; i++)
        slots[i] = malloc(1 + rand_r(&seed) % 256);
    __sync_fetch_and_add(&filled, 1);
    while (!stop) {
        int i = rand_r(&seed) % 64;
        free(slots[i]);
        slots[i] = malloc(1 + rand_r(&seed) % 256);
    }
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    while (filled < THREADS)
        usleep(1000);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 2;
    stop = 1;
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("ok\n");
    return 0;
}
