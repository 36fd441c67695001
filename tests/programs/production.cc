// Production mode (--leak-check=no --sample-rate=N): sampled blocks are guarded, the others are
// glibc's own. Modes:
//   overflow N  allocate N blocks of 20 bytes, writing one byte past each: a
//               sampled block faults there; glibc's blocks have slack, so natively nothing happens
//   mix         many blocks through every allocation and release form, checked and printed as a
//               checksum (the same natively and under memcheck)
//   usable N    N blocks of 5 bytes: prints how many report glibc's usable size (24) and how many
//               the exact size (5: a guarded block, or any block in memcheck's full mode)
//   sampled-double-free  frees twice the first block whose usable size is exact (a sampled one)
//   glibc-double-free    frees an unsampled block twice (glibc's own check aborts)
//   fork        a forked child frees and reallocates its parent's blocks
//   memcpy-over N LEN  N blocks of 20 bytes, each the destination of a memcpy of LEN bytes
#include <malloc.h>
#include <new>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *make(size_t n) {
    return (char *)malloc(n); // MAKE-HERE
}

static void overflow(long n) {
    for (long i = 0; i < n; i++) {
        volatile char *p = make(20);
        p[20] = 1; // OVERFLOW-HERE
        free((void *)p);
    }
    printf("no overflow caught\n");
}

static uint64_t mix_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int mix(void) {
    enum { N = 4000 };
    static char *blocks[N];
    static size_t sizes[N];
    uint64_t h = 0xcbf29ce484222325ULL;
    int bad = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = 1 + (size_t)((i * 7919 + round * 104729) % 3000);
            char *p;
            switch (i % 6) {
            case 0:
                p = (char *)malloc(n);
                break;
            case 1:
                p = (char *)calloc(n, 1);
                for (size_t k = 0; k < n; k++)
                    bad += p[k] != 0;
                break;
            case 2: {
                void *q = NULL;
                if (posix_memalign(&q, 64, n) != 0)
                    return 1;
                bad += ((uintptr_t)q & 63) != 0;
                p = (char *)q;
                break;
            }
            case 3:
                p = (char *)aligned_alloc(32, (n + 31) & ~(size_t)31);
                bad += ((uintptr_t)p & 31) != 0;
                break;
            case 4:
                p = (char *)memalign(128, n);
                bad += ((uintptr_t)p & 127) != 0;
                break;
            default:
                p = (char *)realloc(NULL, n);
                break;
            }
            if (!p)
                return 1;
            bad += malloc_usable_size(p) < n;
            memset(p, 'a' + i % 26, n);
            blocks[i] = p;
            sizes[i] = n;
        }
        for (int i = 0; i < N; i++) {
            // Grow or shrink every other block, keeping its bytes.
            if (i % 2 == 0) {
                size_t n = sizes[i] * 3 / 2 + 1;
                char *p = (char *)realloc(blocks[i], n);
                if (!p)
                    return 1;
                for (size_t k = 0; k < sizes[i]; k++)
                    bad += p[k] != 'a' + i % 26;
                memset(p + sizes[i], 'z', n - sizes[i]);
                blocks[i] = p;
                sizes[i] = n;
            }
            h = mix_hash(h, blocks[i], sizes[i]);
            bad += malloc_usable_size(blocks[i]) < sizes[i];
        }
        for (int i = 0; i < N; i++) {
            char *d = strdup("production mode");
            h = mix_hash(h, d, strlen(d));
            free(d);
            free(blocks[i]);
        }
    }
    // Every operator new and delete form.
    for (int i = 0; i < 3000; i++) {
        int *one = new int(i);
        int *arr = new int[1 + i % 50];
        arr[i % 50] = *one;
        h = mix_hash(h, &arr[i % 50], sizeof(int));
        delete one;
        delete[] arr;
        auto *al = static_cast<char *>(::operator new(48, std::align_val_t(64)));
        bad += ((uintptr_t)al & 63) != 0;
        ::operator delete(al, std::align_val_t(64));
        auto *sz = static_cast<char *>(::operator new(40));
        ::operator delete(sz, 40);
        auto *nt = new (std::nothrow) char[30];
        delete[] nt;
    }
    printf("mix %016llx bad %d\n", (unsigned long long)h, bad);
    return bad != 0;
}

static void usable(long n) {
    long glibc = 0, exact = 0, other = 0;
    for (long i = 0; i < n; i++) {
        char *p = (char *)malloc(5);
        size_t u = malloc_usable_size(p);
        if (u == 24)
            glibc++;
        else if (u == 5)
            exact++;
        else
            other++;
        free(p);
    }
    printf("glibc %ld exact %ld other %ld\n", glibc, exact, other);
}

static void sampled_double_free(void) {
    for (int i = 0; i < 100000; i++) {
        char *p = (char *)malloc(5);
        if (malloc_usable_size(p) == 5) {
            free(p);
            free(p); // DOUBLE-FREE-HERE
            printf("double free done\n");
            return;
        }
        free(p);
    }
    printf("no sampled block\n");
}

static void memcpy_over(long n, size_t len) {
    static char src[64];
    for (long i = 0; i < n; i++) {
        char *p = make(20);
        memcpy(p, src, len); // MEMCPY-HERE
        free(p);
    }
    printf("copied %ld\n", n);
}

static void glibc_double_free(void) {
    char *warm = (char *)malloc(5);
    char *p = (char *)malloc(5);
    printf("usable %zu\n", malloc_usable_size(p));
    fflush(stdout);
    free(p);
    free(p);
    free(warm);
    printf("survived\n");
}

static int forked(void) {
    enum { N = 500 };
    char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = (char *)malloc(10 + i);
        memset(b[i], 1, 10 + i);
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < N; i++) {
            b[i] = (char *)realloc(b[i], 20 + 2 * i);
            free(b[i]);
        }
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    for (int i = 0; i < N; i++)
        free(b[i]);
    printf("fork child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 1000;
    if (!strcmp(mode, "overflow"))
        overflow(n);
    else if (!strcmp(mode, "mix"))
        return mix();
    else if (!strcmp(mode, "usable"))
        usable(n);
    else if (!strcmp(mode, "sampled-double-free"))
        sampled_double_free();
    else if (!strcmp(mode, "glibc-double-free"))
        glibc_double_free();
    else if (!strcmp(mode, "fork"))
        return forked();
    else if (!strcmp(mode, "memcpy-over") && argc > 3)
        memcpy_over(n, (size_t)atol(argv[3]));
    else if (!strcmp(mode, "exec-usable")) {
        // The child program inherits the mode (--trace-children).
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "usable", argv[2], (char *)NULL);
        return 127;
    } else
        return 2;
    return 0;
}
