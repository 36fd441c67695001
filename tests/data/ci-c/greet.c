#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "greet.h"

char *greeting(const char *name)
{
    char *s = malloc(strlen(name) + 8);
    sprintf(s, "hello, %s", name);
    return s;
}

int sum(const int *v, int n)
{
    int t = 0;
    for (int i = 0; i < n; i++)
        t += v[i];
    return t;
}
