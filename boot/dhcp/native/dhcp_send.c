/* Batched DHCP replies: one sendmmsg() for the replies that one turn of the
 * event loop produced, on the fd of the server's own dgram socket. Node's
 * dgram send costs an address lookup, a tick and one sendmsg() per reply;
 * under a flood that was about a third of the server's busy time. The
 * socket keeps its options (SO_BINDTODEVICE, SO_BROADCAST), so each reply
 * leaves exactly as dgram would send it. */
#define _GNU_SOURCE /* sendmmsg */
#include <node_api.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sendBatch", NAPI_AUTO_LENGTH, send_batch, NULL, &fn);
  napi_set_named_property(env, exports, "sendBatch", fn);
  napi_value max;
  napi_create_int32(env, MAX_BATCH, &max);
  napi_set_named_property(env, exports, "maxBatch", max);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
