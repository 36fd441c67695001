/* Bad calls of the memory and string functions, one per mode (argv[1]); each ends the program
   with _exit so nothing after the bad call muddies the report. `clean` makes every checked call
   correctly. Markers name the lines the tests look for. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void done(void) {
    fflush(stdout);
    _exit(0);
}

static void overlap(void) {
    char *p = malloc(32);
    memset(p, 'a', 32);
    memcpy(p + 4, p, 16); /* MEMCPY-OVERLAP */
    done();
}

static void strncat_past_end(void) {
    char *d = malloc(10);
    strcpy(d, "abc");
    strncat(d, "defghijklmnop", 12); /* STRNCAT-HERE */
    done();
}

static void puts_freed(void) {
    char *s = strdup("hello, freed");
    free(s);
    puts(s); /* PUTS-HERE */
    done();
}

static void strcat_unterminated(void) {
    char *a = malloc(24);
    char *b = malloc(24);
    strcpy(b, "next");
    memset(a, 'x', 24);
    strcat(a, "z"); /* STRCAT-HERE */
    printf("%s\n", b);
    done();
}

static void memset_before(void) {
    char *p = malloc(16);
    memset(p - 1, 0, 4); /* MEMSET-UNDER */
    done();
}

/* Built with -O2 -D_FORTIFY_SOURCE=2: the compiler knows the block's size and calls the _chk
   variants, which abort after the shim has reported. */
static void fortify(int n) {
    char *p = malloc(10);
    char src[64];
    memset(src, 's', sizeof src);
    src[63] = 0;
    memcpy(p, src, (size_t)n); /* FORTIFY-MEMCPY */
    printf("%d\n", p[0]);
    done();
}

static void fortify_strncat(int n) {
    char *p = malloc(10);
    strcpy(p, "ab");
    strncat(p, "cdefghijklmnopqrstuvwxyz", (size_t)n); /* FORTIFY-STRNCAT */
    printf("%s\n", p);
    done();
}

/* Every checked function called correctly on heap blocks: no report. */
static void clean(void) {
    char *a = malloc(64), *b = malloc(64);
    memset(a, 0, 64);
    bzero(b, 64);
    explicit_bzero(b, 8);
    strcpy(a, "hello");
    stpcpy(b, "world");
    strcat(a, ", ");
    strncat(a, b, 3);
    strncpy(b, a, 64);
    stpncpy(b, a, 10);
    memmove(a + 1, a, 20);
    memcpy(b, a, 21);
    mempcpy(b + 30, a, 10);
    bcopy(a, b + 1, 10);
    memccpy(b, a, 'l', 64);
    int r = memcmp(a, b, 64) + bcmp(a, b, 10) + strcmp(a, b) + strncmp(a, b, 64);
    size_t n = strlen(a) + strnlen(b, 64) + strnlen(b, 1000);
    char *c = memchr(a, 'l', 64);
    c = memrchr(a, 'l', 10);
    c = rawmemchr(a, 0);
    c = memmem(a, 20, "ll", 2);
    c = strchr(a, 'o');
    c = strchr(a, 'Q');
    c = strrchr(a, 'l');
    c = strstr(a, "lo");
    char *d = strdup(a), *e = strndup(a, 3), *f = strndup(a, 100);
    memfrob(d, strlen(d));
    char *g = malloc(5);
    memcpy(g, "abcd", 5);
    r += strcmp(g, "abcd") + strcmp("abcd", g) + strncmp(g, "abcdef", 100);
    puts(g);
    fputs(g, stdout);
    fputs("\n", stdout);
    printf("%d %zu %p\n", r != 0, n, (void *)c);
    free(a), free(b), free(d), free(e), free(f), free(g);
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "clean";
    int n = argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(m, "overlap")) overlap();
    if (!strcmp(m, "strncat")) strncat_past_end();
    if (!strcmp(m, "puts-freed")) puts_freed();
    if (!strcmp(m, "strcat-unterminated")) strcat_unterminated();
    if (!strcmp(m, "memset-before")) memset_before();
    if (!strcmp(m, "fortify")) fortify(n);
    if (!strcmp(m, "fortify-strncat")) fortify_strncat(n);
    clean();
    return 0;
}
