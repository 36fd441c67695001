/* A thread stuck with a lock: it fills stderr (a pipe nobody reads yet) and then, with argument
 * "stats", calls malloc_stats(), which blocks writing while it holds the main arena's lock and
 * stderr's; with "print" it blocks in fprintf(stderr) holding only stderr's lock. The main
 * thread prints "ready" and waits for a line on stdin, then for the thread, prints "done" and
 * exits 4. The main thread uses read(2) and write(2): stdio would allocate its buffers, and
 * malloc waits for the lock the thread holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int filled;
static int stats;

static void *stuck(void *arg) {
  (void)arg;
  int fl = fcntl(2, F_GETFL);
  fcntl(2, F_SETFL, fl | O_NONBLOCK);
  char b[4096];
  memset(b, '.', sizeof b);
  while (write(2, b, sizeof b) > 0 || errno == EINTR) {
  }
  while (write(2, b, 1) > 0 || errno == EINTR) {
  }
  fcntl(2, F_SETFL, fl);
  filled = 1;
  if (stats)
    malloc_stats();
  else
    fprintf(stderr, "a line that waits\n");
  return NULL;
}

int main(int argc, char **argv) {
  stats = argc > 1 && !strcmp(argv[1], "stats");
  char *keep = malloc(5000);
  memset(keep, 1, 5000);
  pthread_t t;
  pthread_create(&t, NULL, stuck, NULL);
  while (!filled) usleep(1000);
  usleep(300000); /* let it block */
  (void)!write(1, "ready\n", 6);
  char line[64];
  if (read(0, line, sizeof line) <= 0) return 1;
  pthread_join(t, NULL);
  printf("done\n");
  return 4;
}
