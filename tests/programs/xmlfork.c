/* Valgrind's XML and --log-file: a heap overflow and a definite leak in the parent; with
 * argv[1] "fork", a forked child (no exec) that loses a block of its own (100 bytes) and exits. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *volatile keep;

__attribute__((noinline)) char *make(size_t n)
{
    return malloc(n); /* XML-ALLOC-HERE */
}

__attribute__((noinline)) void overflow(void)
{
    char *p = make(13);
    ((volatile char *)p)[13] = 'x'; /* XML-OVERFLOW-HERE */
    free(p);
}

__attribute__((noinline)) void lose(size_t n)
{
    char *volatile p = make(n); /* XML-LEAK-HERE */
    memset(p, 1, n);
}

int main(int argc, char **argv)
{
    overflow();
    lose(40);
    keep = make(7);
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t c = fork();
        if (c == 0) {
            lose(100);
            exit(0);
        }
        waitpid(c, 0, 0);
    }
    return 0;
}
