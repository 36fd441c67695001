// The program's own SIGSEGV handler must run with the mask and flags it asked for: with
// SA_NODEFER the signal stays unblocked inside the handler (so a nested fault reaches the handler
// again), sa_mask's signals are blocked, and without SA_NODEFER SIGSEGV is blocked. Prints what
// the handler saw; the output must equal the native run's.
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf back;
static volatile int depth;
static volatile int *volatile bad = (int *)8;

static void report(const char *what) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("%s depth %d: SEGV %s, USR1 %s\n", what, depth,
           sigismember(&cur, SIGSEGV) ? "blocked" : "open",
           sigismember(&cur, SIGUSR1) ? "blocked" : "open");
    fflush(stdout);
}

static void nested(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si; (void)ctx;
    depth++;
    report("nodefer");
    if (depth == 1) {
        (void)*bad; // a second fault inside the handler: allowed by SA_NODEFER
    }
    siglongjmp(back, 1);
}

static void plain(int sig) {
    (void)sig;
    depth++;
    report("plain");
    siglongjmp(back, 1);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = nested;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(back, 1) == 0) (void)*bad;
    printf("after nested: depth %d\n", depth);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = plain;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    depth = 0;
    if (sigsetjmp(back, 1) == 0) (void)*bad;
    printf("after plain: depth %d\n", depth);
    return 0;
}
