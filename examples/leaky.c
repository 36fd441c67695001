/* A small program with real heap bugs, for trying memcheck:
 *   memcheck run -- ./leaky
 * It leaks a buffer, loses a linked list, keeps one block reachable from a global,
 * and frees correctly everything else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    int value;
};

char *kept; /* still reachable at exit */

__attribute__((noinline)) static char *make_greeting(const char *name)
{
    char *buf = malloc(strlen(name) + 8); /* leaked: the caller drops it */
    sprintf(buf, "hello, %s", name);
    return buf;
}

__attribute__((noinline)) static void build_list(int n)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *nd = malloc(sizeof *nd); /* the whole list is lost */
        nd->value = i;
        nd->next = head;
        head = nd;
    }
    printf("built a list of %d nodes\n", n);
}

int main(void)
{
    puts(make_greeting("world"));
    build_list(4);
    kept = malloc(100);
    char *tmp = malloc(32);
    strcpy(tmp, "freed properly");
    puts(tmp);
    free(tmp);
    return 0;
}
