/* `clean` frees what it allocates, `leak` loses a 40-byte block; both write a line of their own
 * to stderr and exit with 3, so a test sees that memcheck's -q leaves both alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink;

__attribute__((noinline)) static void lose(void)
{
    sink = malloc(40); /* QUIET-LEAK */
    sink = NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "leak"))
        lose();
    else
        free(malloc(40));
    fputs("the program's own line\n", stderr);
    return 3;
}
