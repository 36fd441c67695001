/* A program with its own SIGSEGV handler (as the JVM and V8 have): it provokes a fault on
 * purpose and recovers with siglongjmp. Under guard mode the handler must keep working, and a
 * heap overflow must still be caught. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sigjmp_buf env;
static volatile int caught;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)si; (void)ctx;
    caught++;
    siglongjmp(env, 1);
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    for (int i = 0; i < 3; i++) {
        if (sigsetjmp(env, 1) == 0) {
            volatile int *bad = (int *)16;
            *bad = 1; /* the program's own fault */
        }
    }
    printf("own handler caught %d faults\n", caught);
    if (argc > 1) {
        char *p = malloc(32);
        ((volatile char *)p)[32] = 1; /* HANDLER-OVERFLOW-HERE */
        free(p);
    }
    return 0;
}
