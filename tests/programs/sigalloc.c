// A SIGALRM handler firing every 100 us mallocs, reallocs and frees while the main thread
// allocates and frees; prints "done N" when the main loop has finished.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static volatile long handled;
static void *volatile shared;

static void on_alarm(int sig) {
    (void)sig;
    char *p = malloc(48);
    if (p) {
        memset(p, 3, 48);
        p = realloc(p, 96);
        free(p);
    }
    handled++;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 300000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (long i = 0; i < rounds; i++) {
        void *p = malloc(16 + (i % 200));
        shared = p;
        free(p);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("done %ld\n", rounds);
    return 0;
}
