/* Leaks a block, then kills itself with SIGKILL: no exit path runs, so no leak check can. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *volatile p = malloc(19);
    memset(p, 1, 19);
    raise(SIGKILL);
    return 0;
}
