/* Batched DHCP socket I/O on the server's own dgram sockets.
 * Sending: one sendmmsg() for the replies that one turn of the event loop
 * produced. Node's dgram send costs an address lookup, a tick and one
 * sendmsg() per reply; under a flood that was about a third of the
 * server's busy time. The socket keeps its options (SO_BINDTODEVICE,
 * SO_BROADCAST), so each reply leaves exactly as dgram would send it.
 * Receiving: a poll handle on a dup of the socket's fd reads up to
 * RX_BATCH datagrams with one recvmmsg() and hands them to JavaScript in
 * one call, instead of dgram's per datagram 64 KiB buffer, address object
 * and call into JavaScript. The caller stops dgram's own reading first. */
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 256

/* sendBatch(fd, bytes, meta, count, errors) -> how many replies were dealt with.
 * Reply i is bytes[meta[4i] .. meta[4i]+meta[4i+1]) to meta[4i+2] (IPv4,
 * host order) port meta[4i+3]. errors[i] gets 0 or the errno that refused
 * it (that reply is skipped, the rest still go). A return below count means
 * the socket buffer is full (EAGAIN): the caller sends the rest its own way. */
static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, count;
  void *bytes, *meta_data, *err_data;
  size_t bytes_len, meta_len, err_len;
  napi_typedarray_type mt, et;
  napi_value ab;
  size_t off;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[3], &count) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &bytes, &bytes_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &mt, &meta_len, &meta_data, &ab, &off) != napi_ok || mt != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[4], &et, &err_len, &err_data, &ab, &off) != napi_ok || et != napi_int32_array) {
    napi_throw_type_error(env, NULL, "sendBatch(fd, Buffer, Uint32Array, count, Int32Array)");
    return NULL;
  }
  if (count < 0 || count > MAX_BATCH || (size_t)count * 4 > meta_len || (size_t)count > err_len) {
    napi_throw_range_error(env, NULL, "sendBatch: count exceeds the arrays or the batch limit");
    return NULL;
  }
  const uint32_t *meta = meta_data;
  int32_t *errs = err_data;
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in to[MAX_BATCH];
  for (int i = 0; i < count; i++) {
    uint32_t start = meta[4 * i], len = meta[4 * i + 1];
    if ((uint64_t)start + len > bytes_len) {
      napi_throw_range_error(env, NULL, "sendBatch: a reply lies outside the buffer");
      return NULL;
    }
    iov[i].iov_base = (uint8_t *)bytes + start;
    iov[i].iov_len = len;
    memset(&to[i], 0, sizeof to[i]);
    to[i].sin_family = AF_INET;
    to[i].sin_addr.s_addr = htonl(meta[4 * i + 2]);
    to[i].sin_port = htons((uint16_t)meta[4 * i + 3]);
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &to[i];
    msgs[i].msg_hdr.msg_namelen = sizeof to[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    errs[i] = 0;
  }
  int done = 0;
  while (done < count) {
    int n = sendmmsg(fd, msgs + done, (unsigned)(count - done), MSG_DONTWAIT);
    if (n > 0) {
      done += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) break;
    /* sendmmsg reports an error only for the first message of a call: that one is refused, go on with the next. */
    errs[done++] = n < 0 ? errno : EIO;
  }
  napi_value out;
  napi_create_int32(env, done, &out);
  return out;
}

/* Datagrams per recvmmsg() and the slot each gets: a whole UDP payload fits, as in dgram. */
#define RX_BATCH 32
#define RX_SLOT 65536
/* recvmmsg() calls per readiness before the loop gets its turn back (timers, the journal's callbacks). */
#define RX_ROUNDS 4

typedef struct {
  uv_poll_t poll;
  napi_env env;
  int fd; /* our dup of the socket's fd */
  int stopped;
  uint8_t *bytes;
  uint32_t *meta;
  napi_ref bytes_ref, meta_ref, on_batch, self_ref;
  napi_async_context async;
} rx_t;

static void rx_closed(uv_handle_t *h) {
  rx_t *r = h->data;
  close(r->fd);
  napi_delete_reference(r->env, r->bytes_ref);
  napi_delete_reference(r->env, r->meta_ref);
  napi_delete_reference(r->env, r->on_batch);
  if (r->self_ref) napi_delete_reference(r->env, r->self_ref);
  napi_async_destroy(r->env, r->async);
  free(r);
}

static void rx_readable(uv_poll_t *p, int status, int events) {
  rx_t *r = p->data;
  if (status < 0 || r->stopped) return;
  struct mmsghdr msgs[RX_BATCH];
  struct iovec iov[RX_BATCH];
  struct sockaddr_in from[RX_BATCH];
  for (int round = 0; round < RX_ROUNDS && !r->stopped; round++) {
    for (int i = 0; i < RX_BATCH; i++) {
      iov[i].iov_base = r->bytes + (size_t)i * RX_SLOT;
      iov[i].iov_len = RX_SLOT;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(r->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return; /* EAGAIN, or an error the next readiness retries (ICMP errors do not reach unconnected sockets) */
    for (int i = 0; i < n; i++) {
      r->meta[3 * i] = msgs[i].msg_len;
      r->meta[3 * i + 1] = ntohl(from[i].sin_addr.s_addr);
      r->meta[3 * i + 2] = ntohs(from[i].sin_port);
    }
    napi_handle_scope scope;
    napi_open_handle_scope(r->env, &scope);
    napi_value cb, recv, count;
    napi_get_reference_value(r->env, r->on_batch, &cb);
    napi_get_global(r->env, &recv); /* make_callback needs an object as its receiver */
    napi_create_int32(r->env, n, &count);
    /* make_callback, not call_function: the ticks and microtasks the packets queued run afterwards, as after a dgram 'message'. */
    napi_status st = napi_make_callback(r->env, r->async, recv, cb, 1, &count, NULL);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(r->env, &err);
      napi_fatal_exception(r->env, err);
    }
    napi_close_handle_scope(r->env, scope);
    if (n < RX_BATCH) return;
  }
}

/* recvStart(fd, bytes (RX_BATCH * RX_SLOT), meta (Uint32Array, 3 per datagram: length, IPv4 host order, port), onBatch(count)) -> handle */
static napi_value recv_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void *bytes, *meta;
  size_t bytes_len, meta_len, off;
  napi_typedarray_type mt;
  napi_value ab;
  napi_valuetype cbt;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &bytes, &bytes_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &mt, &meta_len, &meta, &ab, &off) != napi_ok || mt != napi_uint32_array ||
      napi_typeof(env, argv[3], &cbt) != napi_ok || cbt != napi_function) {
    napi_throw_type_error(env, NULL, "recvStart(fd, Buffer, Uint32Array, onBatch)");
    return NULL;
  }
  if (bytes_len < (size_t)RX_BATCH * RX_SLOT || meta_len < 3 * RX_BATCH) {
    napi_throw_range_error(env, NULL, "recvStart: the buffer must hold rxBatch * rxSlot bytes and the meta array 3 * rxBatch entries");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "recvStart: no event loop");
    return NULL;
  }
  int dfd = dup(fd);
  if (dfd < 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "recvStart: dup: %s", strerror(errno));
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  rx_t *r = calloc(1, sizeof *r);
  r->env = env;
  r->fd = dfd;
  r->bytes = bytes;
  r->meta = meta;
  napi_create_reference(env, argv[1], 1, &r->bytes_ref);
  napi_create_reference(env, argv[2], 1, &r->meta_ref);
  napi_create_reference(env, argv[3], 1, &r->on_batch);
  napi_value name;
  napi_create_string_utf8(env, "DhcpRecv", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->async);
  r->poll.data = r;
  int e = uv_poll_init(loop, &r->poll, dfd);
  if (e == 0) e = uv_poll_start(&r->poll, UV_READABLE, rx_readable);
  if (e != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "recvStart: %s", uv_strerror(e));
    r->stopped = 1;
    if (uv_is_active((uv_handle_t *)&r->poll) || r->poll.loop == loop) {
      uv_close((uv_handle_t *)&r->poll, rx_closed); /* an initialised handle: rx_closed frees the rest */
    } else {
      rx_closed((uv_handle_t *)&r->poll);
    }
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  /* Reading goes on until recvStop(), like a dgram socket's, whether or not JavaScript still holds the
   * handle: the handle is kept alive from here, and freed with the rest once the poll handle is closed.
   * So recvStop() is called once per handle (BatchReceiver forgets it). */
  napi_value handle;
  napi_create_external(env, r, NULL, NULL, &handle);
  napi_create_reference(env, handle, 1, &r->self_ref);
  return handle;
}

/* recvStop(handle): no further batches; the dup is closed once libuv lets go of it. */
static napi_value recv_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  rx_t *r;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&r) != napi_ok || !r) {
    napi_throw_type_error(env, NULL, "recvStop(handle)");
    return NULL;
  }
  if (!r->stopped) {
    r->stopped = 1;
    uv_poll_stop(&r->poll);
    uv_close((uv_handle_t *)&r->poll, rx_closed);
  }
  return NULL;
}

static void set_int(napi_env env, napi_value obj, const char *name, int v) {
  napi_value x;
  napi_create_int32(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sendBatch", NAPI_AUTO_LENGTH, send_batch, NULL, &fn);
  napi_set_named_property(env, exports, "sendBatch", fn);
  napi_create_function(env, "recvStart", NAPI_AUTO_LENGTH, recv_start, NULL, &fn);
  napi_set_named_property(env, exports, "recvStart", fn);
  napi_create_function(env, "recvStop", NAPI_AUTO_LENGTH, recv_stop, NULL, &fn);
  napi_set_named_property(env, exports, "recvStop", fn);
  set_int(env, exports, "maxBatch", MAX_BATCH);
  set_int(env, exports, "rxBatch", RX_BATCH);
  set_int(env, exports, "rxSlot", RX_SLOT);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
