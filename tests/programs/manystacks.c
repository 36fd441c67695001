/* Leaks N blocks (argv[1], at most 10,000; default 10,000), each from a stack of its own: the
 * preprocessor writes 10,000 functions leak0000 ... leak9999, and main calls the first N of
 * them through a table. Every leak is one distinct stack (its innermost frame is its own
 * function), so the report holds N leak records: the scale test of every report format. */
#include <stdlib.h>

void *volatile sink;

#define F(n) __attribute__((noinline)) static void leak##n(void) { sink = malloc(8); }
#define D0(x) F(x##0) F(x##1) F(x##2) F(x##3) F(x##4) F(x##5) F(x##6) F(x##7) F(x##8) F(x##9)
#define D1(x) D0(x##0) D0(x##1) D0(x##2) D0(x##3) D0(x##4) D0(x##5) D0(x##6) D0(x##7) D0(x##8) D0(x##9)
#define D2(x) D1(x##0) D1(x##1) D1(x##2) D1(x##3) D1(x##4) D1(x##5) D1(x##6) D1(x##7) D1(x##8) D1(x##9)
D2(0) D2(1) D2(2) D2(3) D2(4) D2(5) D2(6) D2(7) D2(8) D2(9)

#define P(n) leak##n,
#define Q0(x) P(x##0) P(x##1) P(x##2) P(x##3) P(x##4) P(x##5) P(x##6) P(x##7) P(x##8) P(x##9)
#define Q1(x) Q0(x##0) Q0(x##1) Q0(x##2) Q0(x##3) Q0(x##4) Q0(x##5) Q0(x##6) Q0(x##7) Q0(x##8) Q0(x##9)
#define Q2(x) Q1(x##0) Q1(x##1) Q1(x##2) Q1(x##3) Q1(x##4) Q1(x##5) Q1(x##6) Q1(x##7) Q1(x##8) Q1(x##9)
static void (*const table[])(void) = {Q2(0) Q2(1) Q2(2) Q2(3) Q2(4) Q2(5) Q2(6) Q2(7) Q2(8) Q2(9)};

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (n < 0 || n > 10000)
        n = 10000;
    for (int i = 0; i < n; i++)
        table[i]();
    sink = NULL;
    return 0;
}
