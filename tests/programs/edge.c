/* Every entry point of the malloc family with glibc's edge cases. It prints only facts that do
 * not depend on addresses, so its output under memcheck must equal its native output. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHOW(name, expr) do { errno = 0; long r_ = (long)(expr); printf("%-28s %ld errno=%d\n", name, r_, errno); } while (0)

static int aligned(void *p, size_t a) { return p && ((uintptr_t)p % a) == 0; }

int main(void)
{
    void *p, *q;
    long page = sysconf(_SC_PAGESIZE);

    p = malloc(0); q = malloc(0); SHOW("malloc(0) unique", p != NULL && q != NULL && p != q); free(p); free(q);
    p = malloc(1);      SHOW("malloc(1) 16-aligned", aligned(p, 16)); free(p);
    p = malloc(13);     SHOW("malloc(13) usable>=13", malloc_usable_size(p) >= 13); free(p);
    SHOW("malloc(SIZE_MAX)", malloc(SIZE_MAX) == NULL);
    SHOW("malloc(PTRDIFF_MAX+1)", malloc((size_t)PTRDIFF_MAX + 1) == NULL);
    SHOW("calloc(SIZE_MAX/2,4)", calloc(SIZE_MAX / 2, 4) == NULL);
    p = calloc(10, 10); SHOW("calloc zeroed", p && ((char *)p)[0] == 0 && ((char *)p)[99] == 0); free(p);
    p = calloc(0, 5);   SHOW("calloc(0,5) non-null", p != NULL); free(p);

    p = malloc(10); strcpy(p, "abcdefghi");
    q = realloc(p, 1000); SHOW("realloc grow keeps data", q && strcmp(q, "abcdefghi") == 0);
    p = realloc(q, 3);    SHOW("realloc shrink keeps data", p && memcmp(p, "abc", 3) == 0);
    SHOW("realloc(p,0) -> NULL", realloc(p, 0) == NULL);
    p = realloc(NULL, 7); SHOW("realloc(NULL,7)", p != NULL); free(p);
    p = malloc(8);
    SHOW("reallocarray overflow", reallocarray(p, SIZE_MAX / 2, 4) == NULL);
    q = reallocarray(p, 4, 4); SHOW("reallocarray ok", q != NULL); free(q);

    SHOW("posix_memalign(3)", posix_memalign(&p, 3, 10));
    SHOW("posix_memalign(24)", posix_memalign(&p, 24, 10));
    SHOW("posix_memalign(0)", posix_memalign(&p, 0, 10));
    SHOW("posix_memalign(64)", posix_memalign(&p, 64, 10) == 0 && aligned(p, 64)); free(p);
    SHOW("posix_memalign(4096,0)", posix_memalign(&p, 4096, 0) == 0 && aligned(p, 4096)); free(p);
    p = aligned_alloc(64, 128); SHOW("aligned_alloc(64)", aligned(p, 64)); free(p);
    p = aligned_alloc(256, 10); SHOW("aligned_alloc(256,10)", aligned(p, 256)); free(p);
    p = memalign(100, 10); SHOW("memalign(100) -> 128", aligned(p, 128)); free(p);
    p = memalign(8, 10);   SHOW("memalign(8)", aligned(p, 16)); free(p);
    SHOW("memalign(huge align)", memalign(SIZE_MAX / 2 + 2, 10) == NULL);
    p = valloc(10);  SHOW("valloc page-aligned", aligned(p, page)); free(p);
    p = pvalloc(1);  SHOW("pvalloc(1) page", aligned(p, page) && malloc_usable_size(p) >= (size_t)page); free(p);
    SHOW("pvalloc(SIZE_MAX)", pvalloc(SIZE_MAX) == NULL);

    p = malloc(5); errno = 1234; free(p); printf("free keeps errno %d\n", errno);
    errno = 77; free(NULL); printf("free(NULL) keeps errno %d\n", errno);
    SHOW("malloc_usable_size(NULL)", malloc_usable_size(NULL));

    /* glibc's own statistics and tuning stay available. */
    p = malloc(1000);
    struct mallinfo2 mi = mallinfo2();
    SHOW("mallinfo2 uordblks>=1000", mi.uordblks >= 1000);
    struct mallinfo m1 = mallinfo();
    SHOW("mallinfo arena>0", m1.arena > 0);
    SHOW("mallopt M_MMAP_THRESHOLD", mallopt(M_MMAP_THRESHOLD, 1 << 20));
    SHOW("malloc_trim", malloc_trim(0) >= 0);
    free(p);
    fflush(stdout);
    malloc_stats();

    /* strdup and friends allocate through malloc and are freed with free. */
    char *s = strdup("copy"); SHOW("strdup", strcmp(s, "copy") == 0); free(s);
    s = NULL; size_t n = 0; FILE *f = fmemopen("line one\nline two\n", 18, "r");
    SHOW("getline", getline(&s, &n, f)); free(s); fclose(f);
    return 0;
}
