/* A small library for the dlclose test: two functions that each leak a block of their own. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *plugin_make_a(size_t n)
{
    char *volatile p = malloc(n); /* PLUGIN-A */
    memset(p, 'a', n);
    return NULL;
}

__attribute__((noinline)) void *plugin_make_b(size_t n)
{
    char *volatile p = malloc(n); /* PLUGIN-B */
    memset(p, 'b', n);
    return NULL;
}
