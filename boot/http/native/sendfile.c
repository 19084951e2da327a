/* Sends a file range to a TCP socket with sendfile(2), on the event loop.
 * The HTTP copy through JavaScript (a read into a buffer, a write from it)
 * was most of the boot server's CPU in a boot storm; sendfile moves page
 * cache pages to the socket without copying them through user space.
 *
 * JavaScript hands over the socket's and the file's descriptors once the
 * response headers are flushed and nothing else is queued on the socket.
 * Both are dup()ed: the transfer owns its own descriptors, so the socket
 * closing under it (a timeout, the client gone) can never make it write
 * into a descriptor number reused by something else. The socket is
 * non-blocking (libuv made it so): sendfile sends what fits, and on EAGAIN
 * a uv_poll handle on the dup waits for it to be writable again; a separate
 * descriptor number is what lets it sit beside libuv's own watcher of the
 * socket. At most SLICE_CALLS calls per wake-up, so one fast client does not
 * hold the loop (DHCP answers share it).
 *
 *   start(socketFd, fileFd, offset, length, onDone) -> [code, sent, transfer?]
 *     code 1: pending, onDone(code, sent) is called once later unless
 *     cancel() comes first; otherwise (and in onDone) the code is the end:
 *     0 all sent, 2 the file ended before the range did, < 0 -errno.
 *   sent(transfer) -> bytes sent so far that have also left the socket's queue;
 *   cancel(transfer): stop, close the dups. */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define SLICE_CALLS 16
#define PENDING 1
#define FILE_ENDED 2

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int sock;
  int file;
  int64_t offset;
  int64_t left;
  int64_t sent;
  int refs;      /* the JavaScript external, and the poll handle until closed */
  int active;    /* onDone still to be called */
  int polling;   /* poll initialised (closed once) */
  napi_ref done; /* onDone */
} transfer_t;

static void release(transfer_t *t) {
  if (--t->refs == 0) free(t);
}

static void on_closed(uv_handle_t *h) {
  transfer_t *t = h->data;
  release(t);
}

/* TCP_CORK while the file goes out, as nginx's tcp_nopush: the kernel sends full segments instead of
 * pushing a short one at the end of every sendfile call (Node's sockets are TCP_NODELAY). Uncorking at the
 * end sends the tail at once. Failure is harmless (not TCP): the bytes go out all the same. */
static void cork(int sock, int on) {
  setsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/* Closes the dups and the poll handle; the struct goes when JS lets it go too. */
static void finish(transfer_t *t) {
  if (t->done) {
    napi_delete_reference(t->env, t->done);
    t->done = NULL;
  }
  t->active = 0;
  if (t->sock < 0) return;
  int polling = t->polling;
  int sock = t->sock, file = t->file;
  t->polling = 0;
  t->sock = -1;
  t->file = -1;
  /* The poll stops before its descriptor closes; uv_close detaches it at once and releases it later. */
  if (polling) {
    uv_poll_stop(&t->poll);
    uv_close((uv_handle_t *)&t->poll, on_closed);
  }
  cork(sock, 0);
  close(sock);
  close(file);
  if (!polling) t->refs--; /* never the last: the caller holds the other one */
}

#define SLICE_OVER 3

/* Sends until done, EAGAIN or the slice ends: 0 done, PENDING (wait for writable), SLICE_OVER, FILE_ENDED, -errno. */
static int pump(transfer_t *t) {
  for (int i = 0; i < SLICE_CALLS && t->left > 0; i++) {
    off_t off = (off_t)t->offset;
    size_t want = t->left > 0x7ffff000 ? 0x7ffff000 : (size_t)t->left;
    ssize_t n = sendfile(t->sock, t->file, &off, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return PENDING;
      return -errno;
    }
    if (n == 0) return FILE_ENDED;
    t->offset += n;
    t->left -= n;
    t->sent += n;
  }
  return t->left == 0 ? 0 : SLICE_OVER;
}

static void call_done(transfer_t *t, int status) {
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn = NULL, global, argv[2];
  if (t->done) napi_get_reference_value(env, t->done, &fn);
  double sent = (double)t->sent;
  finish(t);
  if (fn) {
    napi_get_global(env, &global);
    napi_create_int32(env, status, &argv[0]);
    napi_create_double(env, sent, &argv[1]);
    napi_value ignored;
    /* Inside a libuv callback, not a JS call: make_callback runs the microtasks after it. */
    napi_async_context ctx;
    napi_value name;
    napi_create_string_utf8(env, "zeroboot.sendfile", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &ctx);
    napi_make_callback(env, ctx, global, fn, 2, argv, &ignored);
    napi_async_destroy(env, ctx);
  }
  napi_close_handle_scope(env, scope);
}

static void on_writable(uv_poll_t *p, int status, int events) {
  transfer_t *t = p->data;
  if (!t->active) return;
  int r = status < 0 ? status : pump(t);
  if (r == PENDING || r == SLICE_OVER) return; /* still armed: writable again, or the next slice */
  call_done(t, r);
}

static void finalize(napi_env env, void *data, void *hint) {
  transfer_t *t = data;
  if (t->active) finish(t);
  release(t);
}

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) {                          \
      napi_throw_error(env, NULL, "sendfile: " #call); \
      return NULL;                                    \
    }                                                 \
  } while (0)

static napi_value make_result(napi_env env, int status, double sent, napi_value transfer) {
  napi_value out, v;
  CHECK(napi_create_array_with_length(env, 3, &out));
  CHECK(napi_create_int32(env, status, &v));
  CHECK(napi_set_element(env, out, 0, v));
  CHECK(napi_create_double(env, sent, &v));
  CHECK(napi_set_element(env, out, 1, v));
  if (transfer) CHECK(napi_set_element(env, out, 2, transfer));
  return out;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "sendfile.start(socketFd, fileFd, offset, length, onDone)");
    return NULL;
  }
  int32_t sock, file;
  int64_t offset, length;
  CHECK(napi_get_value_int32(env, argv[0], &sock));
  CHECK(napi_get_value_int32(env, argv[1], &file));
  CHECK(napi_get_value_int64(env, argv[2], &offset));
  CHECK(napi_get_value_int64(env, argv[3], &length));
  if (sock < 0 || file < 0 || offset < 0 || length < 0) {
    napi_throw_range_error(env, NULL, "sendfile.start: negative descriptor, offset or length");
    return NULL;
  }
  transfer_t *t = calloc(1, sizeof *t);
  if (!t) return make_result(env, -ENOMEM, 0, NULL);
  t->env = env;
  t->offset = offset;
  t->left = length;
  t->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  t->file = t->sock < 0 ? -1 : fcntl(file, F_DUPFD_CLOEXEC, 0);
  if (t->file < 0) {
    int e = errno;
    if (t->sock >= 0) close(t->sock);
    free(t);
    return make_result(env, -e, 0, NULL);
  }
  t->refs = 2;
  t->active = 1;
  cork(t->sock, 1);
  int r = pump(t);
  if (r != PENDING && r != SLICE_OVER) {
    double sent = (double)t->sent;
    finish(t);
    release(t);
    return make_result(env, r, sent, NULL);
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int e = uv_poll_init(loop, &t->poll, t->sock);
  if (e == 0) {
    t->polling = 1;
    t->poll.data = t;
    e = uv_poll_start(&t->poll, UV_WRITABLE | UV_DISCONNECT, on_writable);
  }
  if (e != 0) {
    double sent = (double)t->sent;
    finish(t);
    release(t);
    return make_result(env, e, sent, NULL);
  }
  napi_value transfer;
  CHECK(napi_create_reference(env, argv[4], 1, &t->done));
  CHECK(napi_create_external(env, t, finalize, NULL, &transfer));
  return make_result(env, PENDING, (double)t->sent, transfer);
}

static transfer_t *unwrap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "sendfile: expected a transfer");
    return NULL;
  }
  return data;
}

/* Bytes that have left the socket's send queue (the peer is taking them), for the stall and idle checks:
 * with a large send buffer, sendfile itself may not run again for seconds while a slow reader drains it. */
static napi_value sent(napi_env env, napi_callback_info info) {
  transfer_t *t = unwrap(env, info);
  if (!t) return NULL;
  int queued = 0;
  int64_t out = t->sent;
  if (t->sock >= 0 && ioctl(t->sock, SIOCOUTQ, &queued) == 0 && queued > 0) out -= queued < out ? queued : out;
  napi_value v;
  CHECK(napi_create_double(env, (double)out, &v));
  return v;
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  transfer_t *t = unwrap(env, info);
  if (!t) return NULL;
  if (t->active) finish(t);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"sent", NULL, sent, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, cancel, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
