/* malloc(SIZE) once, SIZE the first argument: exits 0 if it returned a block, 1 if NULL.
 * Used by tests/inspect.rs to compare `overcommit --check` with a real allocation. */
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    unsigned long long n = strtoull(argv[1], NULL, 10);
    void *p = malloc(n);
    printf("malloc(%llu): %s\n", n, p ? "returned a block" : "returned NULL");
    return p ? 0 : 1;
}
