/* LD_PRELOAD shim for load generators that never size their receive buffer
 * (perfdhcp): after each bind() of a UDP socket, sets its receive buffer to
 * ZB_RCVBUF bytes. SO_RCVBUFFORCE (root) passes net.core.rmem_max, which a
 * network namespace cannot raise on its own; SO_RCVBUF is the fallback.
 * Prints the size the kernel then reports on stderr ("zb-rcvbuf N"), so the
 * benchmark can check the shim really ran. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static bind_fn real;
  if (!real) real = (bind_fn)dlsym(RTLD_NEXT, "bind");
  int rc = real(fd, addr, len);
  const char *want = getenv("ZB_RCVBUF");
  int type = 0;
  socklen_t tlen = sizeof type;
  if (rc == 0 && want && addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_DGRAM) {
    int bytes = atoi(want);
    if (bytes > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    int got = 0;
    socklen_t glen = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &glen) == 0) fprintf(stderr, "zb-rcvbuf %d\n", got);
  }
  return rc;
}
