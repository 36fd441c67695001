/* The benchmark's launcher: runs a command and writes its wall time, peak RSS and how it ended.
 *
 *   spawn RESULT_FILE PROG [ARGS]...
 *
 * Peak RSS is ru_maxrss from wait4: the largest resident set of the child and of every
 * descendant it waited for. The harness does not fork the workloads itself because a forked
 * Python's resident set (over 20 MB) would count as the child's peak: Linux carries the
 * high-water mark across exec. This process is small, so the child starts small.
 *
 * RESULT_FILE gets one line: "wall_ns maxrss_kb exited|signaled CODE". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s RESULT_FILE PROG [ARGS]...\n", argv[0]);
        return 125;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn: fork");
        return 125;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("spawn: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("spawn: wait4");
        return 125;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("spawn: result file");
        return 125;
    }
    if (WIFSIGNALED(status))
        fprintf(f, "%lld %ld signaled %d\n", ns, ru.ru_maxrss, WTERMSIG(status));
    else
        fprintf(f, "%lld %ld exited %d\n", ns, ru.ru_maxrss, WEXITSTATUS(status));
    fclose(f);
    return 0;
}
