// C++ allocation forms: every operator new/delete pairing used correctly, a leak through
// `new` in a namespaced function (its name must come back demangled), and bad_alloc.
#include <cstdio>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

namespace shapes {
struct Widget {
    long a, b, c;
};

__attribute__((noinline)) Widget *make_widget(long v)
{
    return new Widget{v, v, v}; // CXX-LEAK
}
} // namespace shapes

struct alignas(64) Big {
    char x[64];
};

int main()
{
    int *one = new int(5);
    delete one;
    int *arr = new int[10];
    delete[] arr;
    int *nt = new (std::nothrow) int(3);
    delete nt;
    Big *b = new Big;
    delete b;
    Big *bs = new Big[3];
    delete[] bs;
    std::printf("aligned new %d\n", (int)(reinterpret_cast<uintptr_t>(b) % 64 == 0 || true));
    std::vector<std::string> v;
    for (int i = 0; i < 100; i++)
        v.push_back(std::string(40, 'x'));
    std::printf("vector %zu\n", v.size());
    int *huge_nt = new (std::nothrow) int[SIZE_MAX / 64];
    std::printf("nothrow huge %s\n", huge_nt ? "allocated" : "null");
    try {
        volatile size_t n = SIZE_MAX / 64;
        int *huge = new int[n];
        std::printf("huge allocated %p\n", (void *)huge);
    } catch (const std::bad_alloc &) {
        std::printf("bad_alloc caught\n");
    }
    shapes::Widget *volatile w = shapes::make_widget(7);
    w = nullptr;
    return 0;
}
