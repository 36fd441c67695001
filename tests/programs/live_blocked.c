/* A thread that blocks every signal (memcheck's 62 included) while the main thread waits: prints
 * "ready PID" once the thread has blocked them, waits for a line on stdin, exits 0. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int blocked;

static void *sleeper(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&m);
    blocked = 1;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
    for (;;)
        pause();
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    pthread_mutex_lock(&m);
    while (!blocked)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    printf("bye\n");
    return 0;
}
