// A workload with exactly known behaviour, for tests and benchmarks.
// usage: workload <comm> <command> [args...]
//   getppid N           N getppid system calls
//   open PATH N         N openat(PATH) calls (each closed when it succeeds)
//   openmany PREFIX N   N openat calls, of PREFIX0 … PREFIX<N-1>: N distinct paths
//   statfs PATH N       N statfs(PATH) calls
//   stat PATH N         N fstatat(PATH) calls (newfstatat: the size comes back in a struct stat)
//   read SIZE...        one read of SIZE bytes from /dev/zero per SIZE
//   sleep MS N          N nanosleeps of MS milliseconds
//   signal N            N SIGUSR1 sent to itself (handled)
//   target N            fay_target(i) for i in 0..N-1; fay_target returns 2*i
//   nested N            fay_outer(i) for i in 0..N-1, each calling fay_target(i)
//   spin MS             burns CPU in spin_loop() for MS milliseconds
//   bench N             N getppid calls, then prints ns per call
//   benchother N        the same with getuid: a call a getppid probe does not name
//   threads N           N threads started (pthread_create) on fay_thread_start, one after another
// With WORKLOAD_WAIT=1 it first waits for one byte on stdin, so that a test can
// attach probes (e.g. with the workload's pid) before anything happens. With
// WORKLOAD_HOLD=1 it prints "held" once done and waits for one byte on stdin
// before it exits, so that a test can read what needs it alive (its symbols).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long fay_target(long x) {
  __asm__ volatile("" ::: "memory");
  return 2 * x;
}

__attribute__((noinline)) long fay_outer(long x) {
  long r = fay_target(x);
  __asm__ volatile("" ::: "memory");
  return r + 1;
}

static volatile unsigned long sink;

__attribute__((noinline)) void spin_loop(long ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    for (int i = 0; i < 100000; i++) sink += i;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
}

static void on_signal(int sig) { (void)sig; }

__attribute__((noinline)) void *fay_thread_start(void *arg) {
  __asm__ volatile("" ::: "memory");
  return arg;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: workload <comm> <command> [args...]\n");
    return 2;
  }
  prctl(PR_SET_NAME, argv[1], 0, 0, 0);
  if (getenv("WORKLOAD_WAIT")) {
    char go;
    if (read(0, &go, 1) != 1) return 3;
  }
  const char *cmd = argv[2];
  if (!strcmp(cmd, "getppid")) {
    long n = atol(argv[3]);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
  } else if (!strcmp(cmd, "open")) {
    long n = atol(argv[4]);
    for (long i = 0; i < n; i++) {
      int fd = openat(AT_FDCWD, argv[3], O_RDONLY);
      if (fd >= 0) close(fd);
    }
  } else if (!strcmp(cmd, "statfs")) {
    long n = atol(argv[4]);
    struct statfs fs;
    for (long i = 0; i < n; i++) statfs(argv[3], &fs);
  } else if (!strcmp(cmd, "stat")) {
    long n = atol(argv[4]);
    struct stat st;
    for (long i = 0; i < n; i++) syscall(SYS_newfstatat, AT_FDCWD, argv[3], &st, 0);
  } else if (!strcmp(cmd, "openmany")) {
    long n = atol(argv[4]);
    char path[4096];
    for (long i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s%ld", argv[3], i);
      int fd = openat(AT_FDCWD, path, O_RDONLY);
      if (fd >= 0) close(fd);
    }
  } else if (!strcmp(cmd, "read")) {
    int fd = open("/dev/zero", O_RDONLY);
    static char buf[1 << 20];
    for (int i = 3; i < argc; i++) {
      long size = atol(argv[i]);
      if (read(fd, buf, size) != size) return 4;
    }
    close(fd);
  } else if (!strcmp(cmd, "pipe")) {
    // Each pipe's buffers are kmalloc'ed in the kernel.
    long n = atol(argv[3]);
    for (long i = 0; i < n; i++) {
      int fds[2];
      if (pipe(fds) != 0) return 5;
      close(fds[0]);
      close(fds[1]);
    }
  } else if (!strcmp(cmd, "sleep")) {
    long ms = atol(argv[3]), n = atol(argv[4]);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    for (long i = 0; i < n; i++) nanosleep(&t, NULL);
  } else if (!strcmp(cmd, "signal")) {
    signal(SIGUSR1, on_signal);
    long n = atol(argv[3]);
    for (long i = 0; i < n; i++) raise(SIGUSR1);
  } else if (!strcmp(cmd, "target")) {
    long n = atol(argv[3]);
    for (long i = 0; i < n; i++) sink += fay_target(i);
  } else if (!strcmp(cmd, "nested")) {
    long n = atol(argv[3]);
    for (long i = 0; i < n; i++) sink += fay_outer(i);
  } else if (!strcmp(cmd, "spin")) {
    spin_loop(atol(argv[3]));
  } else if (!strcmp(cmd, "bench") || !strcmp(cmd, "benchother")) {
    long n = atol(argv[3]), call = strcmp(cmd, "bench") ? SYS_getuid : SYS_getppid;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(call);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
  } else if (!strcmp(cmd, "mix")) {
    // A steady mix of system calls for categorising: every <period_ms>, a burst of <n> of them,
    // for <bursts> bursts. Mix A: getppid. Mix B: openat + close of <path>, and newfstatat.
    const char *which = argv[3], *path = argv[4];
    long n = atol(argv[5]), period = atol(argv[6]), bursts = atol(argv[7]);
    struct timespec t = {period / 1000, (period % 1000) * 1000000L};
    struct stat st;
    for (long b = 0; b < bursts; b++) {
      for (long i = 0; i < n; i++) {
        if (which[0] == 'A') {
          syscall(SYS_getppid);
        } else {
          int fd = openat(AT_FDCWD, path, O_RDONLY);
          if (fd >= 0) close(fd);
          syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0);
        }
      }
      nanosleep(&t, NULL);
    }
  } else if (!strcmp(cmd, "threads")) {
    long n = atol(argv[3]);
    for (long i = 0; i < n; i++) {
      pthread_t thread;
      if (pthread_create(&thread, NULL, fay_thread_start, NULL) != 0) return 6;
      pthread_join(thread, NULL);
    }
  } else {
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
  }
  if (getenv("WORKLOAD_HOLD")) {
    char go;
    printf("held\n");
    fflush(stdout);
    if (read(0, &go, 1) != 1) return 3;
  }
  return 0;
}
