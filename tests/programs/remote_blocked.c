/* A single-threaded process that waits in read(2) on stdin while memcheck inspects its heap
 * (one block of 300000 bytes, so mmapped). With "seccomp" as argument it first installs a
 * seccomp filter that allows everything; with "nodump" it makes itself non-dumpable. Then it
 * echoes the line it read, writes to stderr, exits 3. */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "seccomp")) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
      perror("seccomp");
      return 1;
    }
  }
  if (argc > 1 && !strcmp(argv[1], "nodump")) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  char *keep = malloc(300000);
  memset(keep, 1, 300000);
  printf("ready\n");
  fflush(stdout);
  char buf[64];
  ssize_t n = read(0, buf, sizeof buf);
  printf("got %.*s", (int)(n > 0 ? n : 0), buf);
  fprintf(stderr, "stderr still works\n");
  return keep[299999] == 1 ? 3 : 1;
}
