/* Loads the library named by argv[1], calls its two leaking functions through one call site (so
 * the two stacks differ only inside the library), unloads it, then loads and unloads a second
 * library (argv[2], if given) that may take the same addresses, and exits. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *(*make_fn)(size_t);

__attribute__((noinline)) static void call(make_fn f, size_t n)
{
    f(n);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dlclose LIB [LIB2]\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    make_fn fns[2] = {(make_fn)dlsym(h, "plugin_make_a"), (make_fn)dlsym(h, "plugin_make_b")};
    for (int i = 0; i < 2; i++)
        call(fns[i], 300 + i);
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        return 2;
    }
    if (argc > 2) {
        void *h2 = dlopen(argv[2], RTLD_NOW);
        if (!h2) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 2;
        }
        dlclose(h2);
    }
    printf("unloaded\n");
    return 0;
}
