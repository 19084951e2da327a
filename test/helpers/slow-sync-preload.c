/* LD_PRELOAD shim for tests: a disk slow to sync. Every fdatasync(2) waits
 * ZB_SLOW_SYNC_MS (default 1000) before it runs, as on a busy hard disk or
 * an SD card; the data still reaches the disk. Build:
 *   cc -shared -fPIC -o slow-sync.so slow-sync-preload.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  const char *ms = getenv("ZB_SLOW_SYNC_MS");
  long wait = ms ? atol(ms) : 1000;
  struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
  return real(fd);
}
