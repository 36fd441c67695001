/* A correct multithreaded program: threads allocate, pass blocks to each other, realloc and free
 * them, and fork a child that allocates too. Nothing to report, in any mode. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 20000

static void *slots[THREADS][64];

static void *work(void *arg)
{
    long t = (long)arg;
    unsigned seed = (unsigned)t * 7919u + 1;
    for (int i = 0; i < ROUNDS; i++) {
        int k = rand_r(&seed) % 64;
        size_t n = 1 + rand_r(&seed) % 2000;
        if (slots[t][k]) {
            void *q = realloc(slots[t][k], n);
            memset(q, (int)i, n);
            free(q);
            slots[t][k] = NULL;
        } else {
            slots[t][k] = (i & 1) ? calloc(1, n) : malloc(n);
            memset(slots[t][k], 1, n);
        }
    }
    for (int k = 0; k < 64; k++)
        free(slots[t][k]);
    return NULL;
}

int main(void)
{
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, work, (void *)t);
    pid_t pid = fork();
    if (pid == 0) {
        char *s = malloc(100);
        strcpy(s, "child");
        free(s);
        exit(0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("threads done, child exit %d\n", WEXITSTATUS(status));
    return 0;
}
