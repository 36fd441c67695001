// Allocation/release family mismatches, one per mode.
#include <cstdlib>
#include <cstring>
#include <cstdio>

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!std::strcmp(m, "new-free")) {
        int *p = new int(1);
        std::free(p); // NEW-FREE-HERE
    } else if (!std::strcmp(m, "newarray-delete")) {
        int *p = new int[4];
        delete p; // NEWARRAY-DELETE-HERE
    } else if (!std::strcmp(m, "malloc-delete")) {
        int *p = static_cast<int *>(std::malloc(4));
        delete[] p; // MALLOC-DELETE-HERE
    }
    std::puts("survived");
    return 0;
}
