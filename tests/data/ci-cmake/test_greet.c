#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "greet.h"

int main(void)
{
    char *s = greeting("world");
    int ok = strcmp(s, "hello, world") == 0;
#ifndef LEAK
    free(s);
#endif
    printf("test_greet: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
