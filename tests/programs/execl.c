/* The execl family under --trace-children (tests/children.rs). argv[1] chooses:
 *   leak N ARGS...   the child: leaks N bytes, prints its argc, last argument and $MARK;
 *   execl | execle | execlp   exec this program in "leak" mode through that call, with more
 *                    arguments than fit in registers (execle adds MARK=execle to the
 *                    environment; execlp finds the program as "execl" in PATH);
 *   many             execl with 303 arguments (past the shim's on-stack array). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define A10 "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
#define A100 A10, A10, A10, A10, A10, A10, A10, A10, A10, A10

__attribute__((noinline)) void child_leak(size_t n)
{
    char *volatile p = malloc(n);
    p[0] = 1;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "leak")) {
        child_leak((size_t)atoi(argv[2]));
        const char *mark = getenv("MARK");
        printf("child argc=%d last=%s mark=%s\n", argc, argv[argc - 1], mark ? mark : "-");
        return 0;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return 2;
    self[n] = 0;
    fflush(stdout);
    if (!strcmp(m, "execl")) {
        execl(self, "execl", "leak", "17", "a", "b", "c", "d", "e", "--skip-me", "end", (char *)NULL);
    } else if (!strcmp(m, "execle")) {
        size_t k = 0;
        while (environ[k])
            k++;
        char **env = calloc(k + 2, sizeof *env);
        memcpy(env, environ, k * sizeof *env);
        env[k] = "MARK=execle";
        execle(self, "execle", "leak", "19", "a", "b", "c", "d", "e", "end", (char *)NULL, env);
    } else if (!strcmp(m, "execlp")) {
        execlp("execl", "execlp", "leak", "23", "a", "b", "c", "d", "e", "end", (char *)NULL);
    } else if (!strcmp(m, "many")) {
        execl(self, "many", "leak", "29", A100, A100, A100, "end", (char *)NULL);
    } else if (!strcmp(m, "missing")) {
        execl("/nonexistent/prog", "prog", (char *)NULL);
        printf("execl failed\n");
        return 0;
    }
    perror("exec");
    return 1;
}
