/* Forks two children that do not exec: the first frees what it allocates, the second loses
 * three 16-byte blocks from one stack and writes one byte past a block (an error, found when the
 * block is freed). The parent waits for both and frees its own block. Each forked child's
 * report covers what it allocated. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

__attribute__((noinline)) static void clean(void)
{
    char *p = malloc(24);
    free(p);
}

__attribute__((noinline)) static void leak(void)
{
    for (int i = 0; i < 3; i++)
        sink = malloc(16); /* FORKTWO-LEAK */
    sink = NULL;
    volatile char *b = malloc(5);
    b[5] = 1;
    free((void *)b);
}

int main(void)
{
    char *mine = malloc(10);
    void (*jobs[])(void) = {clean, leak};
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            jobs[i]();
            exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
    }
    free(mine);
    return 0;
}
