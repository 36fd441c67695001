/* The main thread exits with pthread_exit (the leader becomes a zombie) while a second thread
 * holds heap, prints "ready", waits for a line on stdin and exits the process with 5. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg) {
  (void)arg;
  char *keep = malloc(200000);
  memset(keep, 2, 200000);
  usleep(100000); /* the leader has exited by now */
  printf("ready\n");
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) exit(1);
  printf("worker done\n");
  fflush(stdout);
  exit(keep[199999] == 2 ? 5 : 1);
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_exit(NULL);
}
