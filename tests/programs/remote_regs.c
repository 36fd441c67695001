/* The main thread spins with known values in registers (rbx, r12-r15, and xmm0-15, or all of
 * ymm0-15 with AVX2) while memcheck stops it and calls into it; after each spin it checks them.
 * Prints "ready", spins until "quit" on stdin, then prints "regs ok" (exit 0) or what changed
 * (exit 1). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned char pat[16][32] __attribute__((aligned(32)));
static unsigned char out[16][32] __attribute__((aligned(32)));
static uint64_t gpr_out[5];
static const uint64_t gpr_pat[5] = {0x1111222233334444, 0x5555666677778888, 0x99990000aaaabbbb,
                                    0xccccddddeeeeffff, 0x0123456789abcdef};
#define ITERS 20000000L

#define LOAD(i, r) #r " " #i "*32(%[p]), %%" #r #i "\n"
#define STORE(i, r) #r " %%" #r #i ", " #i "*32(%[o])\n"
#define GPRS_IN                                                                                  \
  "mov 0(%[g]), %%rbx\nmov 8(%[g]), %%r12\nmov 16(%[g]), %%r13\nmov 24(%[g]), %%r14\n"           \
  "mov 32(%[g]), %%r15\n"
#define GPRS_OUT                                                                                 \
  "mov %%rbx, 0(%[go])\nmov %%r12, 8(%[go])\nmov %%r13, 16(%[go])\nmov %%r14, 24(%[go])\n"       \
  "mov %%r15, 32(%[go])\n"
#define SPIN "mov %[n], %%rcx\n1: dec %%rcx\njnz 1b\n"
#define CLOBBERS                                                                                 \
  "rbx", "rcx", "r12", "r13", "r14", "r15", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",    \
      "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

__attribute__((target("avx2"))) static void spin_avx(void) {
  __asm__ volatile(GPRS_IN
                   "vmovdqu 0*32(%[p]), %%ymm0\nvmovdqu 1*32(%[p]), %%ymm1\n"
                   "vmovdqu 2*32(%[p]), %%ymm2\nvmovdqu 3*32(%[p]), %%ymm3\n"
                   "vmovdqu 4*32(%[p]), %%ymm4\nvmovdqu 5*32(%[p]), %%ymm5\n"
                   "vmovdqu 6*32(%[p]), %%ymm6\nvmovdqu 7*32(%[p]), %%ymm7\n"
                   "vmovdqu 8*32(%[p]), %%ymm8\nvmovdqu 9*32(%[p]), %%ymm9\n"
                   "vmovdqu 10*32(%[p]), %%ymm10\nvmovdqu 11*32(%[p]), %%ymm11\n"
                   "vmovdqu 12*32(%[p]), %%ymm12\nvmovdqu 13*32(%[p]), %%ymm13\n"
                   "vmovdqu 14*32(%[p]), %%ymm14\nvmovdqu 15*32(%[p]), %%ymm15\n" SPIN
                   "vmovdqu %%ymm0, 0*32(%[o])\nvmovdqu %%ymm1, 1*32(%[o])\n"
                   "vmovdqu %%ymm2, 2*32(%[o])\nvmovdqu %%ymm3, 3*32(%[o])\n"
                   "vmovdqu %%ymm4, 4*32(%[o])\nvmovdqu %%ymm5, 5*32(%[o])\n"
                   "vmovdqu %%ymm6, 6*32(%[o])\nvmovdqu %%ymm7, 7*32(%[o])\n"
                   "vmovdqu %%ymm8, 8*32(%[o])\nvmovdqu %%ymm9, 9*32(%[o])\n"
                   "vmovdqu %%ymm10, 10*32(%[o])\nvmovdqu %%ymm11, 11*32(%[o])\n"
                   "vmovdqu %%ymm12, 12*32(%[o])\nvmovdqu %%ymm13, 13*32(%[o])\n"
                   "vmovdqu %%ymm14, 14*32(%[o])\nvmovdqu %%ymm15, 15*32(%[o])\n"
                   "vzeroupper\n" GPRS_OUT
                   :
                   : [p] "r"(pat), [o] "r"(out), [g] "r"(gpr_pat), [go] "r"(gpr_out), [n] "r"(ITERS)
                   : CLOBBERS);
}

static void spin_sse(void) {
  __asm__ volatile(GPRS_IN
                   "movdqu 0*32(%[p]), %%xmm0\nmovdqu 1*32(%[p]), %%xmm1\n"
                   "movdqu 2*32(%[p]), %%xmm2\nmovdqu 3*32(%[p]), %%xmm3\n"
                   "movdqu 4*32(%[p]), %%xmm4\nmovdqu 5*32(%[p]), %%xmm5\n"
                   "movdqu 6*32(%[p]), %%xmm6\nmovdqu 7*32(%[p]), %%xmm7\n"
                   "movdqu 8*32(%[p]), %%xmm8\nmovdqu 9*32(%[p]), %%xmm9\n"
                   "movdqu 10*32(%[p]), %%xmm10\nmovdqu 11*32(%[p]), %%xmm11\n"
                   "movdqu 12*32(%[p]), %%xmm12\nmovdqu 13*32(%[p]), %%xmm13\n"
                   "movdqu 14*32(%[p]), %%xmm14\nmovdqu 15*32(%[p]), %%xmm15\n" SPIN
                   "movdqu %%xmm0, 0*32(%[o])\nmovdqu %%xmm1, 1*32(%[o])\n"
                   "movdqu %%xmm2, 2*32(%[o])\nmovdqu %%xmm3, 3*32(%[o])\n"
                   "movdqu %%xmm4, 4*32(%[o])\nmovdqu %%xmm5, 5*32(%[o])\n"
                   "movdqu %%xmm6, 6*32(%[o])\nmovdqu %%xmm7, 7*32(%[o])\n"
                   "movdqu %%xmm8, 8*32(%[o])\nmovdqu %%xmm9, 9*32(%[o])\n"
                   "movdqu %%xmm10, 10*32(%[o])\nmovdqu %%xmm11, 11*32(%[o])\n"
                   "movdqu %%xmm12, 12*32(%[o])\nmovdqu %%xmm13, 13*32(%[o])\n"
                   "movdqu %%xmm14, 14*32(%[o])\nmovdqu %%xmm15, 15*32(%[o])\n" GPRS_OUT
                   :
                   : [p] "r"(pat), [o] "r"(out), [g] "r"(gpr_pat), [go] "r"(gpr_out), [n] "r"(ITERS)
                   : CLOBBERS);
}

int main(void) {
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 32; j++) pat[i][j] = (unsigned char)(i * 32 + j + 1);
  __builtin_cpu_init();
  int avx = __builtin_cpu_supports("avx2");
  size_t width = avx ? 32 : 16;
  printf("ready\n");
  fflush(stdout);
  for (long spins = 1;; spins++) {
    memset(out, 0, sizeof out);
    if (avx)
      spin_avx();
    else
      spin_sse();
    for (int i = 0; i < 16; i++)
      if (memcmp(out[i], pat[i], width)) {
        printf("%s%d clobbered in spin %ld\n", avx ? "ymm" : "xmm", i, spins);
        return 1;
      }
    if (memcmp(gpr_out, gpr_pat, sizeof gpr_pat)) {
      printf("general registers clobbered in spin %ld\n", spins);
      return 1;
    }
    struct pollfd pfd = {0, POLLIN, 0};
    if (poll(&pfd, 1, 0) > 0) break;
  }
  printf("regs ok\n");
  return 0;
}
