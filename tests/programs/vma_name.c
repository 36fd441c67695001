/* Exits 0 if this kernel lets a process name its anonymous memory (PR_SET_VMA_ANON_NAME).
 * Used by tests/inspect.rs. */
#include <sys/mman.h>
#include <sys/prctl.h>
int main(void) {
    void *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return prctl(0x53564d41, 0, (unsigned long)p, 4096, (unsigned long)"probe") == 0 ? 0 : 1;
}
