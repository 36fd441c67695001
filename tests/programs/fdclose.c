// Hostile to memcheck's record file: MODE "close" closes fds 0..1023, "devnull" dup2s /dev/null
// over every fd, "reuse" closes every fd and opens eight data files in DIR (argv[2]), "exhaust"
// opens /dev/null until no descriptor is left; then each leaks a block and exits with status 0.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *keep;

__attribute__((noinline)) static void leak33(void) {
    char *volatile lost = malloc(33);
    memset(lost, 1, 33);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "close";
    keep = malloc(10);
    if (strcmp(mode, "close") == 0) {
        for (int fd = 0; fd < 1024; fd++) close(fd);
    } else if (strcmp(mode, "devnull") == 0) {
        int n = open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 1024; fd++)
            if (fd != n) dup2(n, fd);
    } else if (strcmp(mode, "reuse") == 0) {
        for (int fd = 0; fd < 1024; fd++) close(fd);
        for (int i = 0; i < 8; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/data%d", argv[2], i);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
            if (fd >= 0) write(fd, "data\n", 5);
        }
    } else if (strcmp(mode, "exhaust") == 0) {
        while (open("/dev/null", O_RDONLY) >= 0) {
        }
    }
    leak33();
    free(keep);
    keep = malloc(20); // still reachable
    return 0;
}
