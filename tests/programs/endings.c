/* Every way a process can end, each after leaking a block of a known size: _exit and _Exit in
 * a forked child and in the program itself, a vfork child that _exits (it must not touch its
 * parent's report), death by SIGTERM with and without a handler of the program's, an inherited
 * SIG_IGN, a crash (null dereference), and what sigaction reports for the dispositions; and
 * "spawn PROG" runs PROG with posix_spawnp and waits for it. */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void __attribute__((noinline)) leak(size_t n)
{
    volatile char *p = malloc(n);
    p[0] = 1;
}

static int __attribute__((noinline)) crash(int *p)
{
    return *p; /* SEGV-HERE */
}

static void *churn(void *arg)
{
    (void)arg;
    for (;;) {
        void *volatile p = malloc(64);
        free(p);
    }
    return NULL;
}

static void on_term(int sig)
{
    (void)sig;
    _exit(7);
}

static const char *disp(int sig)
{
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0)
        return "error";
    return sa.sa_handler == SIG_IGN ? "ign" : sa.sa_handler == SIG_DFL ? "dfl"
         : sa.sa_handler == on_term ? "on_term" : "other";
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(mode, "child_exit") == 0) {
        pid_t c = fork();
        if (c == 0) {
            leak(17);
            _exit(3);
        }
        int st;
        waitpid(c, &st, 0);
        printf("child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 0;
    }
    if (strcmp(mode, "_exit") == 0) {
        leak(23);
        _exit(5);
    }
    if (strcmp(mode, "_Exit") == 0) {
        leak(23);
        _Exit(6);
    }
    if (strcmp(mode, "vfork") == 0) {
        pid_t c = vfork();
        if (c == 0)
            _exit(4);
        int st;
        waitpid(c, &st, 0);
        leak(29);
        printf("vfork child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 0;
    }
    if (strcmp(mode, "vfork_segv") == 0) {
        /* The child's handler is the child's: the parent still crashes by default. */
        pid_t c = vfork();
        if (c == 0) {
            signal(SIGSEGV, on_term);
            _exit(0);
        }
        int st;
        waitpid(c, &st, 0);
        return crash(argc > 5 ? (int *)argv : NULL);
    }
    if (strcmp(mode, "term") == 0) {
        leak(19);
        kill(getpid(), SIGTERM);
        pause();
        return 0;
    }
    if (strcmp(mode, "threads_term") == 0) {
        /* The signal may land on any thread, often one inside malloc. */
        pthread_t t;
        for (int i = 0; i < 4; i++)
            pthread_create(&t, NULL, churn, NULL);
        leak(37);
        usleep(20000);
        /* Blocked here, so the kernel gives it to a worker. */
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &term, NULL);
        kill(getpid(), SIGTERM);
        pause();
        return 0;
    }
    if (strcmp(mode, "child_term") == 0) {
        pid_t c = fork();
        if (c == 0) {
            leak(17);
            kill(getpid(), SIGTERM);
            pause();
        }
        int st;
        waitpid(c, &st, 0);
        printf("child signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
        return 0;
    }
    if (strcmp(mode, "term_handler") == 0) {
        signal(SIGTERM, on_term);
        leak(19);
        kill(getpid(), SIGTERM);
        pause();
        return 0;
    }
    if (strcmp(mode, "ignored") == 0) {
        printf("SIGTERM %s\n", disp(SIGTERM));
        kill(getpid(), SIGTERM);
        printf("survived\n");
        return 0;
    }
    if (strcmp(mode, "segv") == 0) {
        leak(31);
        return crash(argc > 5 ? (int *)argv : NULL);
    }
    if (strcmp(mode, "spawn") == 0 && argc > 2) {
        extern char **environ;
        pid_t c;
        int e = posix_spawnp(&c, argv[2], NULL, NULL, argv + 2, environ);
        if (e != 0)
            return 100;
        int st;
        waitpid(c, &st, 0);
        printf("spawned status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 0;
    }
    if (strcmp(mode, "query") == 0) {
        int sigs[] = {SIGTERM, SIGINT, SIGSEGV, SIGPIPE};
        for (int i = 0; i < 4; i++) {
            int s = sigs[i];
            printf("%d start %s", s, disp(s));
            signal(s, on_term);
            printf(" set %s", disp(s));
            signal(s, SIG_IGN);
            printf(" ign %s", disp(s));
            struct sigaction sa, old;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = SIG_DFL;
            sigaction(s, &sa, &old);
            printf(" old %s now %s\n", old.sa_handler == SIG_IGN ? "ign" : "?", disp(s));
        }
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
