// Lowers its own RLIMIT_AS to argv[1] MiB, then allocates 1 MiB blocks (touching one byte each)
// until malloc fails, and prints how many it got. Frees them, then checks that freeing gave the
// address space back: it allocates again and prints the second count.
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define MAX 100000
static char *blocks[MAX];

static int fill(void) {
    int n = 0;
    while (n < MAX) {
        char *p = malloc(1 << 20);
        if (!p) break;
        p[0] = 1;
        blocks[n++] = p;
    }
    return n;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 256;
    if (mib > 0) {
        struct rlimit r = {(rlim_t)mib << 20, (rlim_t)mib << 20};
        if (setrlimit(RLIMIT_AS, &r) != 0) { perror("setrlimit"); return 2; }
    }
    int a = fill();
    for (int i = 0; i < a; i++) free(blocks[i]);
    int b = fill();
    for (int i = 0; i < b; i++) free(blocks[i]);
    printf("first %d second %d\n", a, b);
    return 0;
}
