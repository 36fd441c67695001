/* Findings for the baseline tests (tests/baseline.rs). argv[1] chooses which: "old" (two old
 * leaks and an old overflow), "new" (the same and one more leak), "fixed" (only the first old
 * leak). Built a second time with -DSHIFT, which inserts a function above everything and
 * renumbers the lines below (#line), as an edit would: lines and addresses move, names stay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SHIFT
__attribute__((noinline)) int shift_padding(int x)
{
    return x * 5 + 2;
}
#line 2000
#endif

__attribute__((noinline)) void old_leak_a(void)
{
    char *volatile p = malloc(24);
    p[0] = 1;
}

__attribute__((noinline)) void old_leak_b(void)
{
    char *volatile p = malloc(40);
    p[0] = 1;
}

__attribute__((noinline)) void old_overflow(void)
{
    char *volatile p = malloc(8);
    p[8] = 1;
    free(p);
}

__attribute__((noinline)) void new_leak(void)
{
    char *volatile p = malloc(56);
    p[0] = 1;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
#ifdef SHIFT
    printf("%d\n", shift_padding(argc));
#endif
    old_leak_a();
    if (strcmp(m, "fixed")) {
        old_leak_b();
        old_overflow();
    }
    if (!strcmp(m, "new"))
        new_leak();
    return 0;
}
