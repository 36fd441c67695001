/* Pointer-heavy binary trees (after the benchmarks game's binary-trees): one long-lived tree,
 * then many short-lived trees of every depth built, walked and torn down node by node.
 *
 *   tree MAX_DEPTH
 *
 * At the end a 7-node subtree of the long-lived tree is cut off without being freed: its root
 * is definitely lost and its 6 descendants indirectly lost, the same every run. */
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *left, *right;
    long item;
};

static struct node *make(int depth, long item) {
    struct node *n = malloc(sizeof *n);
    n->item = item;
    if (depth > 0) {
        n->left = make(depth - 1, 2 * item - 1);
        n->right = make(depth - 1, 2 * item);
    } else {
        n->left = n->right = NULL;
    }
    return n;
}

static long check(const struct node *n) {
    if (!n->left)
        return n->item;
    return n->item + check(n->left) - check(n->right);
}

static void drop(struct node *n) {
    if (n->left) {
        drop(n->left);
        drop(n->right);
    }
    free(n);
}

int main(int argc, char **argv) {
    int max_depth = argc > 1 ? atoi(argv[1]) : 16;
    if (max_depth < 6)
        max_depth = 6;
    struct node *stretch = make(max_depth + 1, 0);
    printf("stretch tree of depth %d\t check: %ld\n", max_depth + 1, check(stretch));
    drop(stretch);

    struct node *longlived = make(max_depth, 0);
    for (int d = 4; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + 4);
        long sum = 0;
        for (long i = 1; i <= iterations; i++) {
            struct node *a = make(d, i), *b = make(d, -i);
            sum += check(a) + check(b);
            drop(a);
            drop(b);
        }
        printf("%ld\t trees of depth %d\t check: %ld\n", iterations * 2, d, sum);
    }
    printf("long lived tree of depth %d\t check: %ld\n", max_depth, check(longlived));

    /* cut off a 7-node subtree (made by make(2)) and leak it; free the rest */
    struct node *p = longlived;
    while (p->left->left->left->left)
        p = p->left;
    p->left = NULL; /* p->left was a depth-3 subtree: now unreachable */
    struct node *keep = p->right;
    p->right = NULL;
    drop(keep);
    /* p is now a leaf-shaped node; free the spine above and including it */
    struct node *q = longlived;
    while (q) {
        struct node *next = q->left;
        if (q->right)
            drop(q->right);
        free(q);
        q = next;
    }
    return 0;
}
