// unpackFiles(batch, count): writes whole files of a local chunk store (dir://,
// a filled cache) on libuv's thread pool, without a JavaScript worker: for
// each file, its chunk files are read and decoded (id checked, GCM, Snappy;
// the plain hash skipped as flist/chunk.ts explains) into a temporary file
// created O_EXCL next to the final name, whose owner, mode and times are set
// on the descriptor before it is renamed: no partial file ever has its final
// name. A file that fails in any way (a chunk file missing, a chunk refused,
// a filesystem error) is left out (its temporary file removed) and reported
// by index: flist/unpack.ts writes it again by the worker path, which
// fetches what is missing or names the file, path and chunk in its error.
// The batch (little-endian), written by flist/unpack-native.ts:
//   u32 umask, then per file: u32 flags (1: chown), u32 mode, u32 uid,
//   u32 gid, f64 mtime (seconds), u32 tmp length, u32 final length,
//   u32 chunks, the tmp path, the final path, then per chunk: 32-byte id,
//   32-byte key, u32 path length, the chunk file's path.
// The result: one Int32 per file, 0 when written, else the errno or the
// decode failure (negated) that made it fall back.
#include "chunk_codec.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_PLAIN (512 * 1024)

// Per pool thread: the codec and buffers live as long as the thread (libuv's
// pool threads live as long as the process).
static __thread CodecState *tl_codec;
static __thread uint8_t *tl_plain;
static __thread uint8_t *tl_stored;
static __thread size_t tl_stored_cap;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref batch_ref;
  const uint8_t *batch;
  size_t batch_len;
  uint32_t count;
  int32_t *results;
  bool malformed;
} Job;

typedef struct {
  const uint8_t *p;
  const uint8_t *end;
} Cursor;

static bool take_u32(Cursor *c, uint32_t *v) {
  if (c->end - c->p < 4) return false;
  memcpy(v, c->p, 4);
  c->p += 4;
  return true;
}

static bool take_bytes(Cursor *c, size_t n, const uint8_t **v) {
  if ((size_t)(c->end - c->p) < n) return false;
  *v = c->p;
  c->p += n;
  return true;
}

// a path from the batch as a C string (copied: the batch has no NULs)
static char *take_path(Cursor *c, uint32_t len) {
  const uint8_t *b;
  if (!take_bytes(c, len, &b)) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  memcpy(s, b, len);
  s[len] = 0;
  return s;
}

// The stored bytes of a chunk file into tl_stored; 0, or an errno.
static int read_chunk(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  size_t n = 0;
  for (;;) {
    if (n == tl_stored_cap) {
      size_t cap = tl_stored_cap == 0 ? (1 << 20) : tl_stored_cap * 2;
      uint8_t *bigger = realloc(tl_stored, cap);
      if (bigger == NULL) {
        close(fd);
        return ENOMEM;
      }
      tl_stored = bigger;
      tl_stored_cap = cap;
    }
    ssize_t got = read(fd, tl_stored + n, tl_stored_cap - n);
    if (got < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return e;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  close(fd);
  *len = n;
  return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

// One file; 0 when it is in place, else a positive errno or a negated decode failure.
static int write_file(Cursor *c, mode_t umask_bits, bool *malformed) {
  uint32_t flags, mode, uid, gid, tmp_len, final_len, chunks;
  const uint8_t *mtime_bytes;
  if (!take_u32(c, &flags) || !take_u32(c, &mode) || !take_u32(c, &uid) || !take_u32(c, &gid) || !take_bytes(c, 8, &mtime_bytes) || !take_u32(c, &tmp_len) ||
      !take_u32(c, &final_len) || !take_u32(c, &chunks)) {
    *malformed = true;
    return EINVAL;
  }
  double mtime;
  memcpy(&mtime, mtime_bytes, 8);
  char *tmp = take_path(c, tmp_len);
  char *final = take_path(c, final_len);
  int result = 0;
  int fd = -1;
  if (tmp == NULL || final == NULL) {
    *malformed = true;
    result = EINVAL;
    goto out;
  }
  // created with its mode when the umask leaves it whole and it has no set-id bits (the owner change would clear them)
  mode_t perm = mode & 07777;
  bool mode_at_open = (perm & 07000) == 0 && (perm & umask_bits) == 0;
  // the temp file is made once the first chunk decoded: a cold cache costs no create and unlink per file
  bool created = false;
  for (uint32_t i = 0; i < chunks; i++) {
    const uint8_t *id, *key;
    uint32_t path_len;
    if (!take_bytes(c, HASH_LEN, &id) || !take_bytes(c, HASH_LEN, &key) || !take_u32(c, &path_len)) {
      *malformed = true;
      result = EINVAL;
      goto out;
    }
    char *path = take_path(c, path_len);
    if (path == NULL) {
      *malformed = true;
      result = EINVAL;
      goto out;
    }
    if (result != 0) {
      free(path);
      continue;
    }
    size_t len = 0;
    result = read_chunk(path, &len);
    free(path);
    if (result != 0) continue;
    int64_t plain_len;
    int r = codec_decode(tl_codec, id, key, tl_stored, len, tl_plain, CHUNK_PLAIN, false, &plain_len);
    if (r != 0) {
      result = -r;
      continue;
    }
    if (!created) {
      fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_at_open ? perm : 0600);
      if (fd < 0) {
        result = errno;
        continue;
      }
      created = true;
    }
    result = write_all(fd, tl_plain, (size_t)plain_len);
  }
  if (result == 0 && !created) {
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_at_open ? perm : 0600);
    if (fd < 0) result = errno;
    else created = true;
  }
  if (result == 0 && (flags & 1) && fchown(fd, uid, gid) != 0) result = errno;
  if (result == 0 && !mode_at_open && fchmod(fd, perm) != 0) result = errno;
  if (result == 0) {
    double sec = floor(mtime);
    struct timespec ts[2];
    ts[0].tv_sec = (time_t)sec;
    ts[0].tv_nsec = (long)((mtime - sec) * 1e9);
    ts[1] = ts[0];
    if (futimens(fd, ts) != 0) result = errno;
  }
  if (created) {
    if (close(fd) != 0 && result == 0) result = errno;
    fd = -1;
    if (result == 0 && rename(tmp, final) != 0) result = errno;
    // only a file this call made (O_EXCL) is removed
    if (result != 0) unlink(tmp);
  }
out:
  if (fd >= 0) {
    // a malformed record after this file's temp file was made
    close(fd);
    unlink(tmp);
  }
  free(tmp);
  free(final);
  return result;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  if (tl_codec == NULL) tl_codec = codec_state_new();
  if (tl_plain == NULL) tl_plain = malloc(CHUNK_PLAIN);
  Cursor c = {job->batch, job->batch + job->batch_len};
  uint32_t umask_bits;
  if (tl_codec == NULL || tl_plain == NULL || !take_u32(&c, &umask_bits)) {
    for (uint32_t i = 0; i < job->count; i++) job->results[i] = ENOMEM;
    job->malformed = tl_codec != NULL && tl_plain != NULL;
    return;
  }
  for (uint32_t i = 0; i < job->count; i++) {
    if (job->malformed) {
      job->results[i] = EINVAL;
      continue;
    }
    job->results[i] = write_file(&c, umask_bits, &job->malformed);
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value ab, arr, err;
  void *mem;
  if (status == napi_ok && !job->malformed && napi_create_arraybuffer(env, job->count * sizeof(int32_t), &mem, &ab) == napi_ok &&
      napi_create_typedarray(env, napi_int32_array, job->count, ab, 0, &arr) == napi_ok) {
    memcpy(mem, job->results, job->count * sizeof(int32_t));
    napi_resolve_deferred(env, job->deferred, arr);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, job->malformed ? "unpackFiles: a malformed batch" : "unpackFiles: the job failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_reference(env, job->batch_ref);
  napi_delete_async_work(env, job->work);
  free(job->results);
  free(job);
}

// unpackFiles(batch: Uint8Array, count: number): Promise<Int32Array>
static napi_value unpack_files(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t len;
  void *data;
  uint32_t count;
  if (argc < 2 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      napi_get_value_uint32(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "unpackFiles: a Uint8Array batch and its file count are required");
    return NULL;
  }
  Job *job = calloc(1, sizeof *job);
  int32_t *results = calloc(count == 0 ? 1 : count, sizeof(int32_t));
  if (job == NULL || results == NULL) {
    free(job);
    free(results);
    napi_throw_error(env, NULL, "unpackFiles: out of memory");
    return NULL;
  }
  job->batch = data;
  job->batch_len = len;
  job->count = count;
  job->results = results;
  napi_value promise, name;
  if (napi_create_reference(env, argv[0], 1, &job->batch_ref) != napi_ok || napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "zeroboot:unpackFiles", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    free(results);
    free(job);
    napi_throw_error(env, NULL, "unpackFiles: could not queue the job");
    return NULL;
  }
  return promise;
}

bool register_unpack_files(napi_env env, napi_value exports) {
  napi_value fn;
  return napi_create_function(env, "unpackFiles", NAPI_AUTO_LENGTH, unpack_files, NULL, &fn) == napi_ok && napi_set_named_property(env, exports, "unpackFiles", fn) == napi_ok;
}
