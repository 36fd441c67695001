#include <stdio.h>
#include <stdlib.h>
#include "greet.h"

int main(void)
{
    int *v = malloc(4 * sizeof *v);
    for (int i = 0; i < 4; i++)
        v[i] = i + 1;
    int ok = sum(v, 4) == 10;
    free(v);
    printf("test_sum: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
