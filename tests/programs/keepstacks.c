/* --keep-stacktraces: one block freed and then written (a use after free, found by the free fill
 * at exit, or at the instruction in guard mode), one freed twice (a double free), and one leaked.
 * Each has its allocation and free in noinline functions of their own, so a test can tell which
 * stacks a report keeps. With the argument `wait` it then prints "ready PID" and waits for a line
 * on stdin (for the live checks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *volatile stale;

__attribute__((noinline)) char *make_block(size_t n)
{
    char *p = malloc(n); /* MAKE-HERE */
    memset(p, 1, n);
    return p;
}

__attribute__((noinline)) void drop_block(char *p)
{
    free(p); /* DROP-HERE */
}

__attribute__((noinline)) void drop_again(char *p)
{
    free(p); /* AGAIN-HERE */
}

__attribute__((noinline)) void leak_block(void)
{
    char *volatile q = malloc(77); /* LEAK-HERE */
    memset(q, 2, 77);
}

int main(int argc, char **argv)
{
    stale = make_block(32);
    drop_block(stale);
    stale[5] = 7; /* TOUCH-HERE */
    char *twice = make_block(48);
    drop_block(twice);
    drop_again(twice);
    leak_block();
    stale = NULL;
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        getchar();
    }
    return 0;
}
