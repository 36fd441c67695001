/* A program with its own handler for memcheck leaks' signal (62, SIGRTMAX-2): a plain kill of
 * it reaches the handler (`handler 62`), memcheck's requests do not, and sigaction reports the
 * program's handler back. Leaks one block from main; prints `ready PID`, waits for stdin. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_signal(int sig) {
    handled++;
    char msg[32];
    int n = snprintf(msg, sizeof msg, "handler %d\n", sig);
    write(1, msg, n);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGRTMAX - 2, &sa, NULL);
    char *lost = malloc(24);
    memset(lost, 7, 24);
    lost = NULL;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 2;
    struct sigaction old;
    sigaction(SIGRTMAX - 2, NULL, &old);
    printf("handled %d, old handler was %s\n", (int)handled,
           old.sa_handler == on_signal ? "the program's" : "another");
    return 0;
}
