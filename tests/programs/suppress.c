/* Findings for the suppression tests (tests/suppress.rs), one set per mode (argv[1]). Built a
 * second time with -DSHIFT, which inserts a function above everything and renumbers the lines
 * below (#line), as an edit above them would: every line number and address below moves while
 * the function names stay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SHIFT


/* Shifted: these lines move every line below. */
__attribute__((noinline)) int shift_padding(int x)
{
    return x * 3 + 1;
}
#line 1000
#endif

char *volatile interior; /* points into the middle of a block */

__attribute__((noinline)) void forgotten(void)
{
    char *volatile p = malloc(24); /* FORGOTTEN */
    p[0] = 1;
}

__attribute__((noinline)) void also_forgotten(void)
{
    char *volatile p = malloc(40); /* ALSO-FORGOTTEN */
    p[0] = 1;
}

__attribute__((noinline)) void possible_only(void)
{
    char *p = malloc(64); /* POSSIBLE */
    interior = p + 16;
}

__attribute__((noinline)) void overflow_once(void)
{
    char *volatile p = malloc(8);
    p[8] = 1; /* OVERFLOW */
    free(p);
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
#ifdef SHIFT
    printf("%d\n", shift_padding(argc));
#endif
    if (!strcmp(m, "leak"))
        forgotten();
    if (!strcmp(m, "two")) {
        forgotten();
        also_forgotten();
    }
    if (!strcmp(m, "possible"))
        possible_only();
    if (!strcmp(m, "overflow3"))
        for (int i = 0; i < 3; i++)
            overflow_once();
    return 0;
}
