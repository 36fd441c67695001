/* Grows from one allocation site: prints "ready PID", then allocates and keeps a 1000-byte block
 * every 100 ms, TICKS times (argv[1]; 0: until stdin has a line or ends); prints "waiting" and
 * waits for a line on stdin (or its end), then prints "grew N blocks" and exits with status 3. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *volatile kept[100000]; /* volatile: the blocks stay reachable at -O2 */

int main(int argc, char **argv)
{
    int ticks = argc > 1 ? atoi(argv[1]) : 30;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    int n = 0;
    for (; (ticks == 0 || n < ticks) && n < 100000; n++) {
        kept[n] = malloc(1000); /* the growing site */
        memset(kept[n], n, 1000);
        if (ticks == 0) {
            struct pollfd in = {0, POLLIN, 0};
            if (poll(&in, 1, 100) > 0) {
                n++;
                break;
            }
            continue;
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    printf("waiting\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    printf("grew %d blocks\n", n);
    return 3;
}
