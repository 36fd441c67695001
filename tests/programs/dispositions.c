/* Prints what the program starts with: the disposition of every standard signal (ign, dfl or
 * handler), the blocked signals, and with "rundir" the mode of MEMCHECK_DIR (needs
 * --trace-children, which keeps the variable in the environment). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "rundir") == 0) {
        const char *d = getenv("MEMCHECK_DIR");
        struct stat st;
        if (!d || stat(d, &st) != 0) {
            printf("no run directory\n");
            return 1;
        }
        printf("rundir mode %o\n", (unsigned)(st.st_mode & 07777));
        return 0;
    }
    sigset_t blocked;
    sigprocmask(SIG_BLOCK, NULL, &blocked);
    for (int s = 1; s < 32; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) != 0)
            continue;
        const char *d = sa.sa_handler == SIG_IGN ? "ign" : sa.sa_handler == SIG_DFL ? "dfl" : "handler";
        printf("%d:%s%s\n", s, d, sigismember(&blocked, s) ? ",blocked" : "");
    }
    return 0;
}
