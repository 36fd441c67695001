/* Daemonises as daemons do: fork, setsid, fork again, the first two exit at once, the daemon's
 * stdio goes to /dev/null. The parent prints the daemon's pid. What the daemon does:
 *   leak  (default) after a second, leaks 33 bytes and exits
 *   hang  sleeps up to 60 s, leaking nothing
 *   exec  execs "sleep 30" (without --trace-children it runs without memcheck's library) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void leak33(void)
{
    char *volatile p = malloc(33); /* DAEMON-LEAK */
    memset(p, 7, 33);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "leak";
    int pfd[2];
    if (pipe(pfd) != 0)
        return 2;
    pid_t a = fork();
    if (a < 0)
        return 2;
    if (a > 0) {
        close(pfd[1]);
        pid_t daemon = 0;
        if (read(pfd[0], &daemon, sizeof daemon) != sizeof daemon)
            return 2;
        waitpid(a, NULL, 0);
        printf("daemon %d\n", (int)daemon);
        return 0;
    }
    setsid();
    pid_t b = fork();
    if (b < 0)
        _exit(2);
    if (b > 0)
        _exit(0);
    pid_t me = getpid();
    if (write(pfd[1], &me, sizeof me) != sizeof me)
        _exit(2);
    close(pfd[0]);
    close(pfd[1]);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
    if (strcmp(mode, "exec") == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    if (strcmp(mode, "hang") == 0) {
        for (int i = 0; i < 60; i++)
            sleep(1);
        return 0;
    }
    sleep(1);
    leak33();
    return 0;
}
