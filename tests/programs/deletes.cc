// Every delete form (argv[1]): sized deletes of the wrong size, aligned new/delete pairs whose
// alignments differ, and the correct forms, which must stay clean. Each bad release sits on a
// line with a marker comment.
#include <cstdio>
#include <cstring>
#include <new>

struct alignas(64) Wide {
    char c[64];
};

struct Base {
    int a;
};

struct Derived : Base {
    int b[10];
};

static void *volatile sink;

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "sized-wrong")) {
        void *p = operator new(24);
        operator delete(p, 16); // SIZED-WRONG-HERE
    } else if (!strcmp(m, "sized-array-wrong")) {
        void *p = operator new[](40);
        operator delete[](p, 48); // SIZED-ARRAY-WRONG-HERE
    } else if (!strcmp(m, "base-delete")) {
        Base *p = new Derived;
        sink = p;
        delete p; // BASE-DELETE-HERE
    } else if (!strcmp(m, "aligned-unaligned")) {
        void *p = operator new(64, std::align_val_t(64));
        operator delete(p); // ALIGNED-UNALIGNED-HERE
    } else if (!strcmp(m, "unaligned-aligned")) {
        void *p = operator new(64);
        operator delete(p, std::align_val_t(32)); // UNALIGNED-ALIGNED-HERE
    } else if (!strcmp(m, "aligned-differ")) {
        void *p = operator new[](128, std::align_val_t(64));
        operator delete[](p, std::align_val_t(128)); // ALIGNED-DIFFER-HERE
    } else if (!strcmp(m, "correct")) {
        Wide *w = new Wide;
        sink = w;
        delete w;
        Wide *ws = new Wide[3];
        sink = ws;
        delete[] ws;
        Derived *d = new Derived;
        sink = d;
        delete d;
        void *p = operator new(24);
        operator delete(p, 24);
        p = operator new(100, std::align_val_t(32));
        operator delete(p, 100, std::align_val_t(32));
        p = operator new[](8, std::align_val_t(8), std::nothrow);
        operator delete[](p, std::align_val_t(8), std::nothrow);
        int *i = new int[5];
        sink = i;
        delete[] i;
    } else {
        std::fprintf(stderr, "unknown mode %s\n", m);
        return 2;
    }
    std::printf("survived\n");
    return 0;
}
