/* Guard mode's recycled slots (argv[1] picks the case; every bad access sits on a line with a
 * marker comment):
 *   churn       200,000 guarded blocks of mixed sizes allocated and freed (every block's bytes
 *               written and checked, calloc's zeroed), then a 1-byte overread of a 10-byte one
 *   prev-freed  a 3,000-byte block freed, its slot recycled for a 16-byte block, that one freed,
 *               then a read through the stale pointer to the first
 *   prev-live   the same with the 16-byte block still live: the stale read reaches it
 *   prev-double the same as prev-freed, then the first block freed again
 * Prints "reused" when the 16-byte block took the first block's slot (its page). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *volatile sink;
volatile int vsink;

__attribute__((noinline)) char *make_old(size_t n)
{
    return malloc(n); /* OLD-ALLOC */
}

__attribute__((noinline)) void drop_old(char *p)
{
    free(p); /* OLD-FREE */
}

__attribute__((noinline)) char *make_small(size_t n)
{
    return malloc(n); /* SMALL-ALLOC */
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

static int churn(void)
{
    enum { LIVE = 64 };
    char *slot[LIVE] = {0};
    size_t len[LIVE] = {0};
    unsigned char tag[LIVE] = {0};
    long reused = 0;
    uintptr_t seen[4096] = {0};
    for (long op = 0; op < 400000; op++) {
        uint64_t r = next();
        int i = (int)(r % LIVE);
        if (slot[i]) {
            for (size_t k = 0; k < len[i]; k += 97)
                if ((unsigned char)slot[i][k] != tag[i]) {
                    printf("block changed\n");
                    return 1;
                }
            free(slot[i]);
            slot[i] = NULL;
            continue;
        }
        size_t n = 1 + (size_t)((r >> 8) % (r & 0x100 ? 20000 : 200));
        char *p;
        if (r & 0x200) {
            p = calloc(1, n);
            for (size_t k = 0; k < n; k++)
                if (p[k]) {
                    printf("calloc not zero\n");
                    return 1;
                }
        } else {
            p = malloc(n);
        }
        uintptr_t page = (uintptr_t)p >> 12;
        if (seen[page % 4096] == page)
            reused++;
        seen[page % 4096] = page;
        tag[i] = (unsigned char)op;
        memset(p, tag[i], n);
        slot[i] = p;
        len[i] = n;
    }
    for (int i = 0; i < LIVE; i++)
        free(slot[i]);
    char *p = malloc(10);
    memset(p, 1, 10);
    vsink = ((volatile char *)p)[10]; /* CHURN-OVERREAD */
    free(p);
    printf("reused %s\n", reused > 1000 ? "yes" : "no");
    return 0;
}

/* Pushes the 3,000-byte block out of the quarantine with blocks of another size class (two
 * pages), so its slot is the oldest free one of its class. */
static void flush(void)
{
    for (int i = 0; i < 4000; i++) {
        sink = malloc(6000);
        free(sink);
    }
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "churn"))
        return churn();
    char *old = make_old(3000);
    memset(old, 7, 3000);
    drop_old(old);
    flush();
    char *small = make_small(16);
    memset(small, 1, 16);
    printf("%s\n", ((uintptr_t)small >> 12) == ((uintptr_t)old >> 12) ? "reused" : "fresh");
    fflush(stdout);
    if (!strcmp(m, "prev-live")) {
        vsink = ((volatile char *)old)[0]; /* STALE-LIVE */
        printf("undetected\n");
        free(small);
        return 0;
    }
    free(small);
    if (!strcmp(m, "prev-double")) {
        free(old); /* OLD-DOUBLE */
        return 0;
    }
    vsink = ((volatile char *)old)[0]; /* STALE-READ */
    printf("survived\n");
    return 0;
}
