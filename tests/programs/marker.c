/* Creates the file named by argv[1] (so a test can tell whether the program ran), prints a line on
 * stdout, and leaks 24 bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void leak(void)
{
    char *volatile p = malloc(24);
    memset(p, 2, 24);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        FILE *f = fopen(argv[1], "w");
        if (f)
            fclose(f);
    }
    printf("program output\n");
    leak();
    return 0;
}
