/* Where the only pointer to a block lives at exit, by mode (argv[1]):
 *
 *   exit-local     main holds a 111-byte block in a local and calls exit(): a live frame.
 *   return-local   main holds a 112-byte block in a local and returns: main's frame is gone.
 *   exit-stale     a returned function held a 113-byte block in a local; main calls exit().
 *   worker-exit    a worker holds a 114-byte block in a local and a 115-byte one in a __thread
 *                  variable, then calls exit() while main, whose own copy of the variable holds
 *                  a 118-byte block, waits in pthread_join.
 *   main-tls       main's __thread variable holds a 116-byte block; main returns.
 *   thread-leak    a worker loses a 117-byte block and returns; main joins it and returns.
 *   private-file   a MAP_PRIVATE writable mapping of a file holds a 121-byte block.
 *   shared-file    a MAP_SHARED mapping of a file holds a 122-byte block.
 *   shared-anon    MAP_SHARED|MAP_ANONYMOUS memory holds a 123-byte block.
 *   memfd          a MAP_SHARED mapping of a memfd holds a 124-byte block.
 *   sysv-shm       a SysV shared memory segment (shmat) holds a 125-byte block.
 *   readonly-anon  private anonymous memory made read-only holds a 126-byte block.
 *   unmapped       private-file, but the mapping is gone at exit: a 127-byte block is lost.
 *
 * Blocks are allocated in noinline functions whose frames are gone by the time of the check, so
 * the only pointer left is the one the mode names. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

static __thread void *tls_ptr;

/* Wipes the stack below the caller, so no copy of a pointer survives in dead frames. */
__attribute__((noinline)) static void wipe(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof junk);
}

__attribute__((noinline)) static void store_block(void **where, size_t n)
{
    *where = malloc(n);
    memset(*where, 7, n);
}

__attribute__((noinline)) static void stale(void)
{
    void *volatile slots[64];
    slots[40] = malloc(113);
    (void)slots;
}

static void *worker(void *arg)
{
    (void)arg;
    void *volatile mine = malloc(114);
    store_block(&tls_ptr, 115);
    wipe();
    exit(mine != NULL ? 0 : 1);
}

__attribute__((noinline)) static void lose(size_t n)
{
    void *volatile p = malloc(n);
    (void)p;
}

static void *leaker(void *arg)
{
    (void)arg;
    lose(117);
    wipe();
    return NULL;
}

static char tmpl[] = "/tmp/memcheck-scan-XXXXXX";

static int temp_file(size_t len)
{
    int fd = mkstemp(tmpl);
    if (fd < 0 || ftruncate(fd, len) != 0) {
        perror("temp file");
        exit(2);
    }
    unlink(tmpl);
    return fd;
}

static void *map_or_die(void *p)
{
    if (p == MAP_FAILED || p == NULL) {
        perror("mapping");
        exit(2);
    }
    return p;
}

__attribute__((noinline)) static void *mapping_for(const char *mode)
{
    size_t len = 4096;
    if (!strcmp(mode, "private-file") || !strcmp(mode, "unmapped"))
        return map_or_die(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, temp_file(len), 0));
    if (!strcmp(mode, "shared-file"))
        return map_or_die(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, temp_file(len), 0));
    if (!strcmp(mode, "shared-anon"))
        return map_or_die(
            mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (!strcmp(mode, "memfd")) {
        int fd = memfd_create("memcheck-scan", 0);
        if (fd < 0 || ftruncate(fd, len) != 0) {
            perror("memfd");
            exit(2);
        }
        return map_or_die(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    }
    if (!strcmp(mode, "sysv-shm")) {
        int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
        if (id < 0) {
            perror("shmget");
            exit(2);
        }
        void *p = map_or_die(shmat(id, NULL, 0));
        shmctl(id, IPC_RMID, NULL); /* destroyed once detached: nothing left behind */
        return p;
    }
    if (!strcmp(mode, "readonly-anon"))
        return map_or_die(
            mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    return NULL;
}

static size_t size_for(const char *mode)
{
    static const char *modes[] = {"private-file", "shared-file", "shared-anon",   "memfd",
                                  "sysv-shm",     "readonly-anon", "unmapped"};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(mode, modes[i]))
            return 121 + i;
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "exit-local")) {
        void *volatile p = malloc(111);
        wipe();
        exit(p != NULL ? 0 : 1);
    }
    if (!strcmp(mode, "return-local")) {
        void *volatile p = malloc(112);
        return p != NULL ? 0 : 1;
    }
    if (!strcmp(mode, "exit-stale")) {
        stale();
        exit(0);
    }
    if (!strcmp(mode, "worker-exit")) {
        pthread_t t;
        store_block(&tls_ptr, 118);
        pthread_create(&t, NULL, worker, NULL);
        pthread_join(t, NULL);
        return 3; /* not reached: the worker exits the process */
    }
    if (!strcmp(mode, "thread-leak")) {
        pthread_t t;
        pthread_create(&t, NULL, leaker, NULL);
        pthread_join(t, NULL);
        return 0;
    }
    if (!strcmp(mode, "main-tls")) {
        store_block(&tls_ptr, 116);
        wipe();
        return 0;
    }
    size_t n = size_for(mode);
    if (n == 0) {
        fprintf(stderr, "unknown mode '%s'\n", mode);
        return 2;
    }
    void **m = mapping_for(mode);
    store_block(&m[10], n);
    if (!strcmp(mode, "readonly-anon"))
        mprotect(m, 4096, PROT_READ);
    if (!strcmp(mode, "unmapped"))
        munmap(m, 4096);
    m = NULL;
    wipe();
    printf("%s\n", mode);
    return 0;
}
