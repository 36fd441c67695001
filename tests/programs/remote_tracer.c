/* A minimal debugger: attaches to the process given as argument with PTRACE_SEIZE, prints
 * "attached", and keeps it until a line arrives on stdin (exiting detaches it). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>

int main(int argc, char **argv) {
  if (argc < 2 || ptrace(PTRACE_SEIZE, atoi(argv[1]), 0, 0)) {
    perror("PTRACE_SEIZE");
    return 1;
  }
  printf("attached\n");
  fflush(stdout);
  char line[16];
  return fgets(line, sizeof line, stdin) ? 0 : 2;
}
