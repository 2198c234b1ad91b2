// A small launcher for start-up figures: runs a command and prints one JSON
// line with its exec -> exit time and its peak RSS (wait4's ru_maxrss).
// Static and tiny on purpose: Linux keeps a process's peak RSS across
// execve, so a launcher as large as Python would report its own size.
//
//   launch COMMAND [ARGS...]
//
// Prints {"wall_ms": W, "maxrss_kib": R, "status": S} on stdout (S: the
// command's exit status, or 128 + signal), with the command's stdout and
// stderr going to /dev/null; exits 0 unless it could not start it.
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: launch COMMAND [ARGS...]\n");
    return 2;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid;
  const int err = posix_spawn(&pid, argv[1], &actions, NULL, argv + 1, environ);
  if (err != 0) {
    fprintf(stderr, "launch: cannot run %s\n", argv[1]);
    return 1;
  }
  int status = 0;
  struct rusage usage;
  if (wait4(pid, &status, 0, &usage) != pid) {
    perror("wait4");
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  printf("{\"wall_ms\": %.3f, \"maxrss_kib\": %ld, \"status\": %d}\n", ms, usage.ru_maxrss, code);
  return 0;
}
