/* Waits (at most 20 s) for SIGINT with a handler; on it prints "got SIGINT" and exits 3. Prints
 * "ready" once the handler is installed. With "parent": sends SIGUSR1 to its parent, then (if
 * still alive 0.2 s later) prints "still here" and exits 0. With "count": after the first SIGINT
 * waits 0.3 s more and prints how many arrived ("got N SIGINT"), exit 3. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_int(int s)
{
    (void)s;
    got++;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "parent") == 0) {
        kill(getppid(), SIGUSR1);
        usleep(200000);
        printf("still here\n");
        return 0;
    }
    signal(SIGINT, on_int);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 200 && !got; i++)
        usleep(100000);
    if (got) {
        if (argc > 1 && strcmp(argv[1], "count") == 0) {
            usleep(300000);
            printf("got %d SIGINT\n", (int)got);
        } else {
            printf("got SIGINT\n");
        }
        return 3;
    }
    printf("no SIGINT\n");
    return 0;
}
