/* Prints how glibc's mallinfo2 figures move when the program allocates and frees: 1000 blocks of
 * 100 bytes, then 4 blocks of 1 MiB (mmapped), then frees them all. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    struct mallinfo2 a = mallinfo2();
    char *small[1000], *big[4];
    for (int i = 0; i < 1000; i++) { small[i] = malloc(100); memset(small[i], 1, 100); }
    struct mallinfo2 b = mallinfo2();
    for (int i = 0; i < 4; i++) { big[i] = malloc(1 << 20); memset(big[i], 1, 1 << 20); }
    struct mallinfo2 c = mallinfo2();
    for (int i = 0; i < 1000; i++) free(small[i]);
    for (int i = 0; i < 4; i++) free(big[i]);
    struct mallinfo2 d = mallinfo2();
    struct mallinfo old = mallinfo();
    printf("small_delta %ld\n", (long)(b.uordblks - a.uordblks));
    printf("big_hblks %ld big_hblkhd %ld\n", (long)(c.hblks - b.hblks), (long)(c.hblkhd - b.hblkhd));
    printf("after_free_uord %ld after_free_hblks %ld\n", (long)(d.uordblks - a.uordblks), (long)(d.hblks - a.hblks));
    printf("mallinfo_agrees %d\n", old.hblks == (int)d.hblks);
    return 0;
}
