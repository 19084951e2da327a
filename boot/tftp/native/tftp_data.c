/* The data path of one TFTP read transfer, in C, on a thread of its own.
 * Node's per-datagram work (an address object and a 64 KiB buffer per
 * receive, a send request, the call into JavaScript, the event loop's own
 * work per wake-up) costs more per block than the protocol itself. Here a
 * thread per transfer blocks in recvfrom() on the transfer socket and
 * answers each ACK with one sendmmsg(): two system calls per window, and
 * the JavaScript thread is not woken at all while blocks flow.
 * JavaScript validates the request, negotiates the options, reads the file
 * into two chunk buffers on demand (onNeed -> supply) and hears once at the
 * end (onEnd), or for a packet from the peer that is not an ACK (onPacket)
 * and for a stranger (onStranger); those go through a thread-safe function.
 * The state machine mirrors boot/tftp/session.ts: same OACK handling,
 * window, rollover, duplicate-ACK rule, backoff and retry budgets. */
#define _GNU_SOURCE /* sendmmsg */
#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_WINDOW 64
#define MAX_BACKOFF_MS 8000.0
#define RECV_BYTES 65536
#define THREAD_STACK (256 * 1024)
/* Events waiting for JavaScript; a flood of strangers or garbage beyond it is dropped (not logged). */
#define EVENT_QUEUE 64
#define OP_ACK 4
#define OP_ERROR 5

enum { ST_IDLE, ST_OACK, ST_DATA, ST_DONE, ST_FAILED };
enum { END_DONE = 0, END_TIMEOUT = 1 };
enum { EV_NEED, EV_PACKET, EV_STRANGER, EV_END };

typedef struct {
  int type;
  double a, b, c;
  char addr[INET_ADDRSTRLEN];
  size_t len;
  uint8_t data[];
} event_t;

typedef struct {
  napi_env env;
  /* Guards fd (the thread closes it, stop() sends on it) and the chunk
   * hand-over; cv wakes a thread waiting for a chunk or told to stop. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int fd;
  int refs;    /* the JavaScript handle, and the thread-safe function while it lives */
  int started; /* the thread runs (or ran) */
  int stopped; /* atomic: the thread is to end */
  napi_threadsafe_function tsfn;
  struct sockaddr_in peer;
  uint64_t size, chunk_size, last_block, timeout_ms;
  uint32_t blksize, windowsize, retries, first_retries;
  int st;
  uint64_t acked, sent, retransmissions; /* acked and retransmissions are read from JavaScript: atomic */
  uint32_t tries;
  int heard, dup_resent;
  /* A range waiting for its chunk, sent once the chunk is supplied. */
  int pending;
  uint64_t pending_first, pending_last;
  uint8_t *slot_data[2];
  size_t slot_len[2];
  int64_t slot_chunk[2]; /* atomic: JavaScript fills a slot, the thread reads it */
  int64_t loading;       /* under mu */
  napi_ref slot_ref[2];
  uint8_t *oack;
  size_t oack_len;
  napi_ref on_need, on_packet, on_stranger, on_end, on_closed;
  napi_async_context async; /* for onClosed, which is called from outside any callback */
  int64_t deadline_us; /* retransmission deadline, monotonic */
  int64_t rcvtimeo_ms; /* SO_RCVTIMEO as last set */
  uint8_t *rbuf;
  uint8_t hdr[MAX_WINDOW][4];
} xfer_t;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int is_stopped(xfer_t *x) {
  return __atomic_load_n(&x->stopped, __ATOMIC_ACQUIRE);
}

static void drop_ref(napi_env env, napi_ref *r) {
  if (*r) napi_delete_reference(env, *r);
  *r = NULL;
}

/* Main thread only: both owners (the handle, the thread-safe function) are gone. */
static void unref(xfer_t *x) {
  if (--x->refs > 0) return;
  if (x->fd >= 0) close(x->fd);
  pthread_mutex_destroy(&x->mu);
  pthread_cond_destroy(&x->cv);
  free(x->rbuf);
  free(x->oack);
  free(x);
}

/* Tells the thread to end: a blocked recvfrom() returns at once on a shut-down socket. */
static void request_stop(xfer_t *x) {
  pthread_mutex_lock(&x->mu);
  __atomic_store_n(&x->stopped, 1, __ATOMIC_RELEASE);
  if (x->fd >= 0) shutdown(x->fd, SHUT_RDWR);
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  xfer_t *x = data;
  request_stop(x);
  unref(x);
}

/* ---- events to JavaScript (thread-safe function) ---- */

static void emit(xfer_t *x, int type, double a, double b, double c, const char *addr, const uint8_t *data, size_t len) {
  event_t *ev = malloc(sizeof *ev + len);
  if (!ev) return;
  ev->type = type;
  ev->a = a;
  ev->b = b;
  ev->c = c;
  ev->addr[0] = 0;
  if (addr) snprintf(ev->addr, sizeof ev->addr, "%s", addr);
  ev->len = len;
  if (len) memcpy(ev->data, data, len);
  /* Strangers and the peer's non-ERROR packets only feed the log: under a
   * flood they are dropped rather than queued without bound. NEED, END and a
   * peer's ERROR (which ends the transfer) always get through. */
  int peer_error = type == EV_PACKET && len >= 2 && data[0] == 0 && data[1] == OP_ERROR;
  int droppable = (type == EV_PACKET && !peer_error) || type == EV_STRANGER;
  if (napi_call_threadsafe_function(x->tsfn, ev, droppable ? napi_tsfn_nonblocking : napi_tsfn_blocking) != napi_ok) free(ev);
}

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* Runs on the JavaScript thread; an exception a callback throws is reported
 * as uncaught, as it would be from a dgram 'message' listener. */
static void deliver(napi_env env, napi_value unused, void *context, void *data) {
  (void)unused;
  xfer_t *x = context;
  event_t *ev = data;
  if (env) {
    napi_ref ref = ev->type == EV_NEED ? x->on_need : ev->type == EV_PACKET ? x->on_packet : ev->type == EV_STRANGER ? x->on_stranger : x->on_end;
    napi_value fn, recv, argv[3], result;
    size_t argc = 0;
    if (ref && napi_get_reference_value(env, ref, &fn) == napi_ok && fn) {
      switch (ev->type) {
        case EV_NEED:
          argv[argc++] = num(env, ev->a);
          break;
        case EV_PACKET: {
          void *copy;
          napi_create_buffer_copy(env, ev->len, ev->data, &copy, &argv[argc++]);
          break;
        }
        case EV_STRANGER:
          napi_create_string_utf8(env, ev->addr, NAPI_AUTO_LENGTH, &argv[argc++]);
          argv[argc++] = num(env, ev->a);
          break;
        default:
          argv[argc++] = num(env, ev->a);
          argv[argc++] = num(env, ev->b);
          argv[argc++] = num(env, ev->c);
      }
      napi_get_undefined(env, &recv);
      if (napi_call_function(env, recv, fn, argc, argv, &result) == napi_pending_exception) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
    }
  }
  free(ev);
}

/* The thread released the function: its last use of the transfer is over
 * and the socket is closed, which onClosed tells JavaScript. */
static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  xfer_t *x = data;
  napi_value fn, recv, result;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  if (x->on_closed && napi_get_reference_value(env, x->on_closed, &fn) == napi_ok && fn) {
    napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
    if (napi_make_callback(env, x->async, recv, fn, 0, NULL, &result) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
  napi_async_destroy(env, x->async);
  drop_ref(env, &x->on_closed);
  drop_ref(env, &x->slot_ref[0]);
  drop_ref(env, &x->slot_ref[1]);
  drop_ref(env, &x->on_need);
  drop_ref(env, &x->on_packet);
  drop_ref(env, &x->on_stranger);
  drop_ref(env, &x->on_end);
  unref(x);
}

/* ---- the protocol, on the transfer's thread ---- */

static void arm_timer(xfer_t *x) {
  double w = (double)x->timeout_ms;
  if (x->heard) {
    double cap = fmax((double)x->timeout_ms, MAX_BACKOFF_MS);
    w = fmin(ldexp((double)x->timeout_ms, (int)(x->tries > 64 ? 64 : x->tries)), cap);
  }
  x->deadline_us = now_us() + (int64_t)(w * 1000);
}

static void send_to(xfer_t *x, const struct sockaddr_in *to, const void *buf, size_t len) {
  sendto(x->fd, buf, len, 0, (const struct sockaddr *)to, sizeof *to);
}

static int64_t slot_holds(xfer_t *x, int64_t k) {
  return __atomic_load_n(&x->slot_chunk[k % 2], __ATOMIC_ACQUIRE) == k;
}

static void request_chunk(xfer_t *x, int64_t k) {
  pthread_mutex_lock(&x->mu);
  int busy = x->loading >= 0; /* one read at a time; the waiter retries */
  if (!busy) {
    x->loading = k;
    __atomic_store_n(&x->slot_chunk[k % 2], -1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&x->mu);
  if (!busy) emit(x, EV_NEED, (double)k, 0, 0, NULL, NULL, 0);
}

/* Starts reading the chunk after the one holding `end` once sending is past
 * its middle, if its slot (two chunks back) is no longer needed. */
static void read_ahead(xfer_t *x, uint64_t end) {
  uint64_t within = end % x->chunk_size;
  if (within < x->chunk_size / 2) return;
  int64_t k = (int64_t)(end / x->chunk_size) + 1;
  if ((uint64_t)k * x->chunk_size >= x->size || slot_holds(x, k)) return;
  int64_t first_needed = (int64_t)((x->acked * x->blksize) / x->chunk_size);
  if (first_needed < k - 1) return;
  request_chunk(x, k);
}

/* Sends DATA for absolute blocks first..last, several per sendmmsg; stops
 * at a block whose chunk is not in memory and asks for it. */
static void send_blocks(xfer_t *x, uint64_t first, uint64_t last) {
  struct mmsghdr msgs[MAX_WINDOW];
  struct iovec iov[MAX_WINDOW][2];
  unsigned n = 0;
  uint64_t end = 0;
  x->pending = 0;
  for (uint64_t b = first; b <= last; b++) {
    uint64_t start = (b - 1) * x->blksize;
    end = start + x->blksize < x->size ? start + x->blksize : x->size;
    const uint8_t *payload = NULL;
    size_t len = end > start ? (size_t)(end - start) : 0;
    if (len > 0) {
      int64_t k = (int64_t)(start / x->chunk_size);
      if (!slot_holds(x, k)) {
        if (n > 0) sendmmsg(x->fd, msgs, n, 0);
        x->pending = 1;
        x->pending_first = b;
        x->pending_last = last;
        request_chunk(x, k);
        return;
      }
      payload = x->slot_data[k % 2] + (start - (uint64_t)k * x->chunk_size);
    }
    uint8_t *h = x->hdr[n];
    h[0] = 0;
    h[1] = 3;
    h[2] = (uint8_t)((b >> 8) & 0xff);
    h[3] = (uint8_t)(b & 0xff);
    iov[n][0].iov_base = h;
    iov[n][0].iov_len = 4;
    iov[n][1].iov_base = (void *)payload;
    iov[n][1].iov_len = len;
    memset(&msgs[n], 0, sizeof msgs[n]);
    msgs[n].msg_hdr.msg_name = &x->peer;
    msgs[n].msg_hdr.msg_namelen = sizeof x->peer;
    msgs[n].msg_hdr.msg_iov = iov[n];
    msgs[n].msg_hdr.msg_iovlen = len > 0 ? 2 : 1;
    if (++n == MAX_WINDOW) {
      sendmmsg(x->fd, msgs, n, 0);
      n = 0;
    }
  }
  if (n > 0) sendmmsg(x->fd, msgs, n, 0);
  read_ahead(x, end);
}

static void send_window(xfer_t *x) {
  uint64_t first = x->acked + 1;
  uint64_t left = x->last_block - x->acked;
  uint64_t count = x->windowsize < left ? x->windowsize : left;
  x->sent = first + count - 1;
  send_blocks(x, first, x->sent);
  arm_timer(x);
}

static void end_transfer(xfer_t *x, int st, int kind) {
  x->st = st;
  emit(x, EV_END, kind, x->tries, (double)x->retransmissions, NULL, NULL, 0);
}

static void on_ack(xfer_t *x, uint32_t wire) {
  if (x->st == ST_OACK) {
    /* Only ACK 0 confirms the OACK (RFC 2347); anything else is stale. */
    if (wire != 0) return;
    x->st = ST_DATA;
    x->heard = 1;
    x->tries = 0;
    send_window(x);
    return;
  }
  if (x->st != ST_DATA) return;
  uint64_t block = x->acked + ((wire - (uint32_t)x->acked) & 0xffff);
  if (block > x->sent) return;
  if (block == x->acked) {
    /* Sorcerer's Apprentice: with a window of one a duplicate is never
     * answered (the timer retransmits); with a larger window it means the
     * window's first block was lost: resend once. */
    if (x->windowsize == 1 || x->dup_resent) return;
    x->dup_resent = 1;
    __atomic_add_fetch(&x->retransmissions, 1, __ATOMIC_RELAXED);
    send_window(x);
    return;
  }
  __atomic_store_n(&x->acked, block, __ATOMIC_RELAXED);
  x->heard = 1;
  x->tries = 0;
  x->dup_resent = 0;
  if (block == x->last_block) {
    end_transfer(x, ST_DONE, END_DONE);
    return;
  }
  send_window(x);
}

static void on_timeout(xfer_t *x) {
  if (x->tries >= (x->heard ? x->retries : x->first_retries)) {
    static const uint8_t timed_out[] = "\0\5\0\0timed out";
    send_to(x, &x->peer, timed_out, sizeof timed_out);
    end_transfer(x, ST_FAILED, END_TIMEOUT);
    return;
  }
  x->tries++;
  __atomic_add_fetch(&x->retransmissions, 1, __ATOMIC_RELAXED);
  if (x->st == ST_OACK) {
    send_to(x, &x->peer, x->oack, x->oack_len);
    arm_timer(x);
    return;
  }
  send_window(x);
}

static void on_stranger(xfer_t *x, const uint8_t *buf, ssize_t n, const struct sockaddr_in *from) {
  /* RFC 1350: a stranger's packet must not touch the transfer; tell it so,
   * unless it is itself an error (two servers must not ping-pong errors) or
   * comes from port 0, which cannot be answered. */
  if (!(n >= 2 && buf[0] == 0 && buf[1] == OP_ERROR) && from->sin_port != 0) {
    static const uint8_t unknown[] = "\0\5\0\5Unknown transfer ID";
    send_to(x, from, unknown, sizeof unknown);
  }
  char addr[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from->sin_addr, addr, sizeof addr);
  emit(x, EV_STRANGER, ntohs(from->sin_port), 0, 0, addr, NULL, 0);
}

static void on_datagram(xfer_t *x, ssize_t n, const struct sockaddr_in *from) {
  const uint8_t *b = x->rbuf;
  if (from->sin_port != x->peer.sin_port || from->sin_addr.s_addr != x->peer.sin_addr.s_addr) {
    on_stranger(x, b, n, from);
    return;
  }
  if (n >= 4 && b[0] == 0 && b[1] == OP_ACK) {
    on_ack(x, ((uint32_t)b[2] << 8) | b[3]);
    return;
  }
  emit(x, EV_PACKET, 0, 0, 0, NULL, b, (size_t)n);
}

/* Stalled on a chunk: waits until no read is in flight (then sends what
 * waits, which may ask for the next chunk) or the retransmission deadline. */
static void wait_for_chunk(xfer_t *x) {
  struct timespec until;
  int64_t d = x->deadline_us;
  until.tv_sec = d / 1000000;
  until.tv_nsec = (d % 1000000) * 1000;
  pthread_mutex_lock(&x->mu);
  while (!is_stopped(x) && x->loading >= 0 && now_us() < x->deadline_us)
    if (pthread_cond_timedwait(&x->cv, &x->mu, &until) == ETIMEDOUT) break;
  int ready = x->loading < 0;
  pthread_mutex_unlock(&x->mu);
  if (is_stopped(x)) return;
  if (ready) send_blocks(x, x->pending_first, x->pending_last);
  else on_timeout(x);
}

/* The receive timeout is the time left to the deadline; it is only changed
 * when that differs from what is set, which in lock-step is never. */
static void set_rcvtimeo(xfer_t *x, int64_t left_ms) {
  if (left_ms == x->rcvtimeo_ms) return;
  struct timeval tv = {.tv_sec = left_ms / 1000, .tv_usec = (left_ms % 1000) * 1000};
  setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  x->rcvtimeo_ms = left_ms;
}

static void *run(void *arg) {
  xfer_t *x = arg;
  if (x->oack) {
    x->st = ST_OACK;
    send_to(x, &x->peer, x->oack, x->oack_len);
    arm_timer(x);
  } else {
    x->st = ST_DATA;
    send_window(x);
  }
  while (!is_stopped(x) && (x->st == ST_OACK || x->st == ST_DATA)) {
    if (x->pending) {
      wait_for_chunk(x);
      continue;
    }
    int64_t left_us = x->deadline_us - now_us();
    if (left_us <= 0) {
      on_timeout(x);
      continue;
    }
    set_rcvtimeo(x, (left_us + 999) / 1000);
    struct sockaddr_in from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(x->fd, x->rbuf, RECV_BYTES, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (is_stopped(x)) break;
    if (n < 0) continue; /* the receive timeout (EAGAIN) or a signal: the deadline is checked above */
    if (n > RECV_BYTES) n = RECV_BYTES;
    on_datagram(x, n, &from);
  }
  pthread_mutex_lock(&x->mu);
  close(x->fd);
  x->fd = -1;
  pthread_mutex_unlock(&x->mu);
  napi_release_threadsafe_function(x->tsfn, napi_tsfn_release);
  return NULL;
}

/* ---- JavaScript API ---- */

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static xfer_t *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "not a transfer handle");
    return NULL;
  }
  return data;
}

/* The arguments of a call whose first is a transfer handle; NULL (with an
 * exception pending) when there are fewer than `want` or the handle is not one. */
static xfer_t *handle_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, size_t *argc) {
  size_t n = 2;
  napi_value all[2];
  napi_get_cb_info(env, info, &n, all, NULL, NULL);
  if (n < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return NULL;
  }
  for (size_t i = 0; i < 2; i++) argv[i] = all[i];
  if (argc) *argc = n;
  return unwrap(env, all[0]);
}

static int get_u64(napi_env env, napi_value obj, const char *name, uint64_t *out) {
  napi_value v;
  double d;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 9007199254740991.0) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a non-negative number", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  *out = (uint64_t)d;
  return 1;
}

static int get_fn(napi_env env, napi_value obj, const char *name, napi_ref *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok || t != napi_function) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a function", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  return napi_create_reference(env, v, 1, out) == napi_ok;
}

static int get_slot(napi_env env, napi_value arr, uint32_t i, xfer_t *x) {
  napi_value b;
  bool is_buf = false;
  void *data;
  size_t len;
  if (napi_get_element(env, arr, i, &b) != napi_ok || napi_is_buffer(env, b, &is_buf) != napi_ok || !is_buf ||
      napi_get_buffer_info(env, b, &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "buffers must be two Buffers");
    return 0;
  }
  x->slot_data[i] = data;
  x->slot_len[i] = len;
  return napi_create_reference(env, b, 1, &x->slot_ref[i]) == napi_ok;
}

/* open(address): a UDP socket bound to address:0. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char addr[64];
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &len) != napi_ok) return throw_msg(env, "open(address)");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) return throw_msg(env, "open: not an IPv4 address");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "socket: %s", strerror(errno));
    return throw_msg(env, msg);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "bind %s:0: %s", addr, strerror(errno));
    close(fd);
    return throw_msg(env, msg);
  }
  xfer_t *x = calloc(1, sizeof *x);
  uint8_t *rbuf = malloc(RECV_BYTES);
  if (!x || !rbuf) {
    free(x);
    free(rbuf);
    close(fd);
    return throw_msg(env, "open: out of memory");
  }
  x->env = env;
  x->fd = fd;
  x->rbuf = rbuf;
  x->refs = 1;
  x->loading = -1;
  x->rcvtimeo_ms = -1;
  x->slot_chunk[0] = x->slot_chunk[1] = -1;
  pthread_mutex_init(&x->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&x->cv, &ca);
  pthread_condattr_destroy(&ca);
  napi_value ext;
  if (napi_create_external(env, x, finalize, NULL, &ext) != napi_ok) {
    unref(x);
    return NULL;
  }
  return ext;
}

static napi_value js_port(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  xfer_t *x = handle_args(env, info, 1, argv, NULL);
  if (!x) return NULL;
  struct sockaddr_in sa;
  socklen_t l = sizeof sa;
  if (x->started || x->fd < 0 || getsockname(x->fd, (struct sockaddr *)&sa, &l) != 0) return throw_msg(env, "port: only before start");
  return num(env, ntohs(sa.sin_port));
}
static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  xfer_t *x = handle_args(env, info, 2, argv, NULL);
  if (!x) return NULL;
  if (x->started || is_stopped(x)) return throw_msg(env, "start: transfer already started or stopped");
  napi_value p = argv[1];
  uint64_t port, blksize, windowsize, retries, first_retries;
  char addr[64];
  size_t alen;
  napi_value v;
  if (napi_get_named_property(env, p, "address", &v) != napi_ok || napi_get_value_string_utf8(env, v, addr, sizeof addr, &alen) != napi_ok)
    return throw_msg(env, "start: address must be a string");
  if (!get_u64(env, p, "port", &port) || !get_u64(env, p, "size", &x->size) || !get_u64(env, p, "blksize", &blksize) ||
      !get_u64(env, p, "windowsize", &windowsize) || !get_u64(env, p, "timeoutMs", &x->timeout_ms) || !get_u64(env, p, "retries", &retries) ||
      !get_u64(env, p, "firstRetries", &first_retries) || !get_u64(env, p, "chunkSize", &x->chunk_size))
    return NULL;
  if (port == 0 || port > 65535 || blksize < 1 || blksize > 65535 || windowsize < 1 || windowsize > MAX_WINDOW || x->timeout_ms < 1 ||
      x->chunk_size < blksize * windowsize * 2 || x->chunk_size % blksize != 0 || retries > 1000000 || first_retries > retries)
    return throw_msg(env, "start: parameter out of range");
  memset(&x->peer, 0, sizeof x->peer);
  x->peer.sin_family = AF_INET;
  x->peer.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &x->peer.sin_addr) != 1) return throw_msg(env, "start: peer is not an IPv4 address");
  x->blksize = (uint32_t)blksize;
  x->windowsize = (uint32_t)windowsize;
  x->retries = (uint32_t)retries;
  x->first_retries = (uint32_t)first_retries;
  x->last_block = x->size / x->blksize + 1;
  napi_value oack, bufs;
  napi_valuetype t;
  napi_get_named_property(env, p, "oack", &oack);
  napi_typeof(env, oack, &t);
  if (t != napi_null && t != napi_undefined) {
    bool is_buf = false;
    void *data;
    size_t len;
    if (napi_is_buffer(env, oack, &is_buf) != napi_ok || !is_buf || napi_get_buffer_info(env, oack, &data, &len) != napi_ok || len == 0)
      return throw_msg(env, "start: oack must be a Buffer or null");
    x->oack = malloc(len);
    if (!x->oack) return throw_msg(env, "start: out of memory");
    memcpy(x->oack, data, len);
    x->oack_len = len;
  }
  if (napi_get_named_property(env, p, "buffers", &bufs) != napi_ok || !get_slot(env, bufs, 0, x) || !get_slot(env, bufs, 1, x)) return NULL;
  /* Slot 0 holds chunks 0, 2, ...; slot 1 chunks 1, 3, ...: with one chunk only slot 0 is used. */
  int one_chunk = x->size <= x->chunk_size;
  if (x->slot_len[0] < (one_chunk ? x->size : x->chunk_size) || x->slot_len[1] < (one_chunk ? 0 : x->chunk_size))
    return throw_msg(env, "start: a chunk buffer is too small");
  if (!get_fn(env, p, "onNeed", &x->on_need) || !get_fn(env, p, "onPacket", &x->on_packet) || !get_fn(env, p, "onStranger", &x->on_stranger) ||
      !get_fn(env, p, "onEnd", &x->on_end) || !get_fn(env, p, "onClosed", &x->on_closed))
    return NULL;
  napi_value name;
  napi_create_string_utf8(env, "zeroboot.tftpData", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, NULL, name, &x->async) != napi_ok) return throw_msg(env, "start: async context");
  if (napi_create_threadsafe_function(env, NULL, NULL, name, EVENT_QUEUE, 1, x, tsfn_finalize, x, deliver, &x->tsfn) != napi_ok) {
    napi_async_destroy(env, x->async);
    return throw_msg(env, "start: cannot create the thread-safe function");
  }
  x->refs++;
  if (x->size > 0) x->slot_chunk[0] = 0;
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, THREAD_STACK);
  int err = pthread_create(&thread, &attr, run, x);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_release_threadsafe_function(x->tsfn, napi_tsfn_release);
    char msg[128];
    snprintf(msg, sizeof msg, "start: cannot create a thread: %s", strerror(err));
    return throw_msg(env, msg);
  }
  x->started = 1;
  return NULL;
}

/* supply(handle, index): chunk `index` is now in buffers[index % 2]. */
static napi_value js_supply(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  xfer_t *x = handle_args(env, info, 2, argv, NULL);
  if (!x) return NULL;
  int64_t k;
  if (napi_get_value_int64(env, argv[1], &k) != napi_ok) return throw_msg(env, "supply: index must be a number");
  pthread_mutex_lock(&x->mu);
  if (k == x->loading) {
    __atomic_store_n(&x->slot_chunk[k % 2], k, __ATOMIC_RELEASE);
    x->loading = -1;
    pthread_cond_broadcast(&x->cv);
  }
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

/* stop(handle, packet?): sends `packet` to the peer if given and ends the
 * transfer's thread; returns [acked, retransmissions]. Idempotent. */
static napi_value js_stop(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc;
  xfer_t *x = handle_args(env, info, 1, argv, &argc);
  if (!x) return NULL;
  bool is_buf = false;
  void *data;
  size_t len;
  pthread_mutex_lock(&x->mu);
  if (argc >= 2 && !is_stopped(x) && x->fd >= 0 && x->peer.sin_port && napi_is_buffer(env, argv[1], &is_buf) == napi_ok && is_buf &&
      napi_get_buffer_info(env, argv[1], &data, &len) == napi_ok)
    send_to(x, &x->peer, data, len);
  if (!x->started && x->fd >= 0) {
    close(x->fd);
    x->fd = -1;
  }
  pthread_mutex_unlock(&x->mu);
  request_stop(x);
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, num(env, (double)__atomic_load_n(&x->acked, __ATOMIC_RELAXED)));
  napi_set_element(env, out, 1, num(env, (double)__atomic_load_n(&x->retransmissions, __ATOMIC_RELAXED)));
  return out;
}

static napi_value js_acked(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  xfer_t *x = handle_args(env, info, 1, argv, NULL);
  return x ? num(env, (double)__atomic_load_n(&x->acked, __ATOMIC_RELAXED)) : NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"open", js_open}, {"port", js_port}, {"start", js_start}, {"supply", js_supply}, {"stop", js_stop}, {"acked", js_acked}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
