/* Leak shapes: a definite leak in a noinline function, a block held by a global (reachable),
 * a lost linked list (1 definite + indirect), and an interior-pointer-only block (possible). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    long value;
};

void *volatile held;      /* keeps a block reachable */
char *volatile interior;  /* points into the middle of a block */

__attribute__((noinline)) void leak_bytes(size_t n)
{
    char *volatile p = malloc(n); /* LEAK-HERE */
    memset(p, 1, n);
}

__attribute__((noinline)) void lose_list(int n)
{
    struct node *volatile head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *nd = malloc(sizeof *nd); /* LIST-HERE */
        nd->value = i;
        nd->next = head;
        head = nd;
    }
}

__attribute__((noinline)) void keep_block(void)
{
    held = malloc(100); /* KEEP-HERE */
}

__attribute__((noinline)) void keep_interior(void)
{
    char *p = malloc(64); /* INTERIOR-HERE */
    interior = p + 16;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 37;
    leak_bytes(n);
    lose_list(5);
    keep_block();
    keep_interior();
    void *ok = malloc(50);
    free(ok);
    printf("done\n");
    return argc > 2 ? atoi(argv[2]) : 0;
}
