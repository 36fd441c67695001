/* A process inspected by memcheck's remote heap calls while it works: it holds 10 blocks of
 * 100000 bytes and 1000 of 48, two threads keep allocating, the main thread allocates and waits
 * in poll(2). After "quit" on stdin it checks it was left as it was: heap blocks intact, signal
 * mask unchanged, every real-time signal sent counted, its SIGSEGV handler still installed (it
 * raises SIGSEGV last; the handler exits 7). */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BIG 10
#define BIG_SIZE 100000
#define SMALL 1000
#define SMALL_SIZE 48

static char *big[BIG];
static char *small[SMALL];
static volatile int stop;
static volatile sig_atomic_t rt_count;
static volatile sig_atomic_t finishing;

static void say(const char *m) { (void)!write(1, m, strlen(m)); }

static void on_rt(int sig) {
  (void)sig;
  rt_count++;
}

static void on_segv(int sig) {
  (void)sig;
  if (finishing) {
    say("segv handler ran\n");
    _exit(7);
  }
  say("UNEXPECTED SIGSEGV\n");
  _exit(99);
}

static void *churn(void *arg) {
  unsigned seed = (unsigned)(long)arg;
  void *keep[64] = {0};
  while (!stop) {
    for (int i = 0; i < 200; i++) {
      int k = rand_r(&seed) % 64;
      free(keep[k]);
      keep[k] = malloc(1 + rand_r(&seed) % 4096);
    }
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  for (int k = 0; k < 64; k++) free(keep[k]);
  return NULL;
}

int main(void) {
  for (int i = 0; i < BIG; i++) memset(big[i] = malloc(BIG_SIZE), 'A' + i, BIG_SIZE);
  for (int i = 0; i < SMALL; i++) memset(small[i] = malloc(SMALL_SIZE), i & 0xff, SMALL_SIZE);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, NULL);
  sa.sa_handler = on_rt;
  sigaction(SIGRTMIN + 1, &sa, NULL);

  /* The workers never take the real-time signal, so each one sent waits for the main thread. */
  sigset_t rt, segv;
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN + 1);
  sigemptyset(&segv);
  sigaddset(&segv, SIGSEGV);
  pthread_sigmask(SIG_BLOCK, &rt, NULL);
  pthread_t t[2];
  for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 1));
  pthread_sigmask(SIG_UNBLOCK, &rt, NULL);
  pthread_sigmask(SIG_BLOCK, &segv, NULL);

  printf("ready\n");
  fflush(stdout);
  char line[64];
  for (;;) {
    free(malloc(100));
    struct pollfd pfd = {0, POLLIN, 0};
    if (poll(&pfd, 1, 2) > 0) {
      if (!fgets(line, sizeof line, stdin) || !strncmp(line, "quit", 4)) break;
    }
  }
  stop = 1;
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);

  int intact = 1;
  for (int i = 0; i < BIG; i++)
    for (int j = 0; j < BIG_SIZE; j++) intact &= big[i][j] == 'A' + i;
  for (int i = 0; i < SMALL; i++)
    for (int j = 0; j < SMALL_SIZE; j++) intact &= small[i][j] == (char)(i & 0xff);
  printf("blocks %s\n", intact ? "intact" : "damaged");
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, NULL, &cur);
  printf("mask %s\n", sigismember(&cur, SIGSEGV) && !sigismember(&cur, SIGRTMIN + 1) ? "ok" : "changed");
  printf("rt %d\n", (int)rt_count);
  printf("done\n");
  fflush(stdout);
  finishing = 1;
  raise(SIGSEGV); /* pending while blocked */
  pthread_sigmask(SIG_UNBLOCK, &segv, NULL);
  say("SIGSEGV handler was reset\n");
  return 1;
}
