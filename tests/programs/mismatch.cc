// A block allocated with malloc and released with operator delete: alloc-dealloc-mismatch, and
// nothing else (no leak).
#include <cstdlib>

int main()
{
    int *volatile p = static_cast<int *>(std::malloc(sizeof(int)));
    *p = 1;
    delete p; // MISMATCH
    return 0;
}
