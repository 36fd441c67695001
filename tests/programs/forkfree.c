// Three threads malloc and free 64 KiB blocks while the main thread forks 200 children that
// exit at once (through exit, so each child runs its leak check).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *churn(void *arg) {
    (void)arg;
    while (!stop) {
        char *p = malloc(64 << 10);
        memset(p, 7, 64 << 10);
        free(p);
    }
    return NULL;
}

int main(void) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, NULL);
    for (int i = 0; i < 200; i++) {
        pid_t pid = fork();
        if (pid == 0) exit(0);
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    stop = 1;
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    return 0;
}
