/* Holds a known number of live heap bytes (5 x 100000 + 1000 x 100 = 600000) while a second
 * thread keeps allocating and freeing; prints "ready PID", waits for a line on stdin, then frees
 * everything, prints "bye" and exits with status 7. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;

static void *churn(void *arg)
{
    (void)arg;
    unsigned seed = 1;
    while (!stop) {
        void *p = malloc(1 + rand_r(&seed) % 4000);
        free(p);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void)
{
    char *big[5], *small[1000];
    for (int i = 0; i < 5; i++) {
        big[i] = malloc(100000);
        memset(big[i], i, 100000);
    }
    for (int i = 0; i < 1000; i++) {
        small[i] = malloc(100);
        memset(small[i], 1, 100);
    }
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    stop = 1;
    pthread_join(t, NULL);
    for (int i = 0; i < 5; i++)
        free(big[i]);
    for (int i = 0; i < 1000; i++)
        free(small[i]);
    printf("bye\n");
    return 7;
}
