/* Forks two children that exec this program again: `leak` loses a block, `clean` frees what it
 * allocates; the parent waits for both. Run with --trace-children=yes, each is a process of its
 * own in the report. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *volatile sink;

__attribute__((noinline)) void lose(void)
{
    sink = malloc(40); /* JUNIT-LEAK-HERE */
    sink = NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "leak")) {
        lose();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "clean")) {
        char *p = malloc(40);
        free(p);
        return 0;
    }
    const char *modes[] = {"leak", "clean"};
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], modes[i], (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
    }
    return 0;
}
