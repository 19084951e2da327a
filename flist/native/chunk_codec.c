// The hot half of the rfs chunk pipeline for flist/chunk.ts: BLAKE2b with a
// chosen digest length, and a chunk's whole decode (id check, AES-256-GCM,
// Snappy, key check) into a buffer the caller reuses.
// Why native: Node's crypto only offers BLAKE2b-512 (BLAKE2b-256 is not a
// truncation of it: the length is in the parameter block), and decoding in
// JavaScript allocated two fresh Buffers per chunk (decipher and Snappy
// output), whose first touch cost a page fault per 4 KiB.
// The OpenSSL that Node embeds (3.x) takes BLAKE2b's length as the digest's
// "size" parameter, so this uses Node's own OpenSSL symbols and headers: no
// new library. The Snappy raw decoder is written here from the format's
// description (varint length, then literal and copy elements); whatever it
// produced is checked against the key's hash, as the JavaScript path does.
// State (digest and cipher contexts, a scratch buffer) is per Node
// environment: the main thread and each worker have their own.
#include "chunk_codec.h"
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 12
#define TAG_LEN 16

struct CodecState {
  EVP_MD *md;
  EVP_MD_CTX *md_ctx;
  EVP_CIPHER *cipher;
  EVP_CIPHER_CTX *cipher_ctx;
  uint8_t *scratch;
  size_t scratch_cap;
};
typedef CodecState State;

void codec_state_free(CodecState *s) {
  if (s == NULL) return;
  EVP_MD_CTX_free(s->md_ctx);
  EVP_MD_free(s->md);
  EVP_CIPHER_CTX_free(s->cipher_ctx);
  EVP_CIPHER_free(s->cipher);
  free(s->scratch);
  free(s);
}

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  codec_state_free(data);
}

CodecState *codec_state_new(void) {
  State *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->md = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
  s->md_ctx = EVP_MD_CTX_new();
  s->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  s->cipher_ctx = EVP_CIPHER_CTX_new();
  if (s->md == NULL || s->md_ctx == NULL || s->cipher == NULL || s->cipher_ctx == NULL) {
    codec_state_free(s);
    return NULL;
  }
  return s;
}

static int digest(State *s, const uint8_t *data, size_t len, uint8_t *out, size_t out_len) {
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_size_t(OSSL_DIGEST_PARAM_SIZE, &out_len), OSSL_PARAM_construct_end()};
  unsigned int written = 0;
  // OpenSSL wants a valid pointer even for 0 bytes
  return EVP_DigestInit_ex2(s->md_ctx, s->md, params) == 1 && EVP_DigestUpdate(s->md_ctx, len == 0 ? (const void *)"" : data, len) == 1 &&
         EVP_DigestFinal_ex(s->md_ctx, out, &written) == 1 && written == out_len;
}

static int bytes_arg(napi_env env, napi_value v, uint8_t **data, size_t *len, const char *what) {
  bool is_typed = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is_typed) == napi_ok && is_typed &&
      napi_get_typedarray_info(env, v, &type, len, (void **)data, NULL, NULL) == napi_ok && type == napi_uint8_array)
    return 1;
  napi_throw_type_error(env, NULL, what);
  return 0;
}

// hash(data: Uint8Array, length = 32 (1..64)): Buffer
static napi_value hash(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  State *s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s) != napi_ok) return NULL;
  uint8_t *data;
  size_t len;
  if (argc < 1 || !bytes_arg(env, argv[0], &data, &len, "blake2b: the data must be a Uint8Array")) return NULL;
  uint32_t out_len = HASH_LEN;
  if (argc >= 2) {
    napi_valuetype vt;
    napi_typeof(env, argv[1], &vt);
    if (vt != napi_undefined && (vt != napi_number || napi_get_value_uint32(env, argv[1], &out_len) != napi_ok || out_len < 1 || out_len > 64)) {
      napi_throw_range_error(env, NULL, "blake2b: the digest length must be 1 to 64 bytes");
      return NULL;
    }
  }
  napi_value result;
  void *out;
  if (napi_create_buffer(env, out_len, &out, &result) != napi_ok) return NULL;
  if (!digest(s, data, len, out, out_len)) {
    napi_throw_error(env, NULL, "blake2b: OpenSSL refused the digest");
    return NULL;
  }
  return result;
}

// Snappy raw block: the length the varint preamble announces (at most 5
// bytes, below 2^32), or -1; *used gets the preamble's size.
static int64_t snappy_length(const uint8_t *p, size_t n, size_t *used) {
  uint64_t v = 0;
  for (size_t i = 0; i < 5 && i < n; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if ((p[i] & 0x80) == 0) {
      if (v > 0xffffffffu) return -1;
      *used = i + 1;
      return (int64_t)v;
    }
  }
  return -1;
}

// Decodes the elements after the preamble into out[0..want); 0 when the
// block is malformed or does not produce exactly `want` bytes. `cap` (>=
// want) is the room of `out`: short literals and copies are moved 16 bytes
// at a time (fixed-size memcpy, two vector moves, instead of a libc call
// per element) while that much room is left, as Snappy's own decoder does;
// the bytes written past an element are overwritten by the next ones.
static int snappy_inflate(const uint8_t *ip, const uint8_t *end, uint8_t *out, size_t want, size_t cap) {
  size_t op = 0;
  while (ip < end) {
    uint8_t tag = *ip++;
    size_t len, off;
    switch (tag & 3) {
      case 0: {
        len = tag >> 2;
        if (len < 16 && (size_t)(end - ip) >= 16 && cap - op >= 16) {
          // len + 1 <= 16 bytes; the checks below still apply to the true length
          len += 1;
          if (want - op < len) return 0;
          memcpy(out + op, ip, 16);
          ip += len;
          op += len;
          continue;
        }
        if (len >= 60) {
          size_t nb = len - 59;
          if ((size_t)(end - ip) < nb) return 0;
          len = 0;
          for (size_t i = 0; i < nb; i++) len |= (size_t)ip[i] << (8 * i);
          ip += nb;
        }
        len += 1;
        if ((size_t)(end - ip) < len || want - op < len) return 0;
        memcpy(out + op, ip, len);
        ip += len;
        op += len;
        continue;
      }
      case 1:
        if (ip >= end) return 0;
        len = ((tag >> 2) & 7) + 4;
        off = ((size_t)(tag >> 5) << 8) | *ip++;
        break;
      case 2:
        if ((size_t)(end - ip) < 2) return 0;
        len = (tag >> 2) + 1;
        off = (size_t)ip[0] | (size_t)ip[1] << 8;
        ip += 2;
        break;
      default:
        if ((size_t)(end - ip) < 4) return 0;
        len = (tag >> 2) + 1;
        off = (size_t)ip[0] | (size_t)ip[1] << 8 | (size_t)ip[2] << 16 | (size_t)ip[3] << 24;
        ip += 4;
        break;
    }
    if (off == 0 || off > op || want - op < len) return 0;
    uint8_t *dst = out + op;
    const uint8_t *src = dst - off;
    if (off >= 16 && len <= 16 && cap - op >= 16) {
      memcpy(dst, src, 16);
    } else if (off >= 8 && cap - op >= len + 8) {
      // 8 bytes a step, forward: each step reads only bytes already final (off >= 8)
      for (size_t i = 0; i < len; i += 8) memcpy(dst + i, src + i, 8);
    } else if (off == 1) {
      memset(dst, *src, len);
    } else if (off >= len) {
      memcpy(dst, src, len);
    } else {
      // overlapping: the copy repeats the last `off` bytes
      for (size_t i = 0; i < len; i++) dst[i] = src[i];
    }
    op += len;
  }
  return op == want;
}

static napi_value failure(napi_env env, int code, int64_t length) {
  napi_value obj, c, l;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_int32(env, code, &c) != napi_ok || napi_create_int64(env, length, &l) != napi_ok ||
      napi_set_named_property(env, obj, "failure", c) != napi_ok || napi_set_named_property(env, obj, "length", l) != napi_ok)
    return NULL;
  return obj;
}

int codec_decode(CodecState *s, const uint8_t *id, const uint8_t *key, const uint8_t *data, size_t len, uint8_t *out, size_t out_cap, bool check_key, int64_t *length) {
  uint8_t h[HASH_LEN];
  *length = 0;
  if (!digest(s, data, len, h, HASH_LEN)) return CODEC_INTERNAL;
  if (memcmp(h, id, HASH_LEN) != 0) return ID_MISMATCH;
  if (len < TAG_LEN) return DECRYPT;
  size_t clen = len - TAG_LEN;
  if (clen > s->scratch_cap || s->scratch == NULL) {
    uint8_t *bigger = realloc(s->scratch, clen + 1);
    if (bigger == NULL) return CODEC_NO_MEMORY;
    s->scratch = bigger;
    s->scratch_cap = clen;
  }
  // a zero-length Uint8Array may have no storage: OpenSSL wants real pointers
  const uint8_t *in = len == 0 ? (const uint8_t *)"" : data;
  int outl = 0, finl = 0;
  OSSL_PARAM none[1] = {OSSL_PARAM_construct_end()};
  if (EVP_DecryptInit_ex2(s->cipher_ctx, s->cipher, key, key, none) != 1 || (clen > 0 && EVP_DecryptUpdate(s->cipher_ctx, s->scratch, &outl, in, (int)clen) != 1) ||
      EVP_CIPHER_CTX_ctrl(s->cipher_ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(in + clen)) != 1 ||
      EVP_DecryptFinal_ex(s->cipher_ctx, s->scratch + outl, &finl) != 1)
    return DECRYPT;
  size_t used = 0;
  int64_t want = snappy_length(s->scratch, clen, &used);
  if (want < 0) return BAD_PREAMBLE;
  *length = want;
  if ((uint64_t)want > out_cap) return TOO_LARGE;
  if (!snappy_inflate(s->scratch + used, s->scratch + clen, out, (size_t)want, out_cap)) return CORRUPT;
  if (check_key) {
    if (!digest(s, out, (size_t)want, h, HASH_LEN)) return CODEC_INTERNAL;
    if (memcmp(h, key, HASH_LEN) != 0) return KEY_MISMATCH;
  }
  return 0;
}

// decode(id, key: 32-byte Uint8Array, data: Uint8Array, out: Uint8Array,
// checkKey = true): the plain length written at the start of `out`, or
// {failure, length} (length: the preamble's, for TOO_LARGE). checkKey false
// skips hashing the plain bytes (see flist/chunk.ts: the id check and the
// GCM tag already pin them down).
static napi_value decode(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  State *s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s) != napi_ok) return NULL;
  bool check_key = true;
  if (argc >= 5) {
    napi_valuetype vt;
    if (napi_typeof(env, argv[4], &vt) != napi_ok) return NULL;
    if (vt != napi_undefined && (vt != napi_boolean || napi_get_value_bool(env, argv[4], &check_key) != napi_ok)) {
      napi_throw_type_error(env, NULL, "decode: checkKey must be a boolean");
      return NULL;
    }
  }
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "decode: id, key, data and out are required");
    return NULL;
  }
  uint8_t *id, *key, *data, *out;
  size_t id_len, key_len, len, out_cap;
  if (!bytes_arg(env, argv[0], &id, &id_len, "decode: the id must be a Uint8Array") || !bytes_arg(env, argv[1], &key, &key_len, "decode: the key must be a Uint8Array") ||
      !bytes_arg(env, argv[2], &data, &len, "decode: the data must be a Uint8Array") || !bytes_arg(env, argv[3], &out, &out_cap, "decode: out must be a Uint8Array"))
    return NULL;
  if (id_len != HASH_LEN || key_len != HASH_LEN) {
    napi_throw_range_error(env, NULL, "decode: the id and the key are 32 bytes");
    return NULL;
  }
  int64_t length;
  int r = codec_decode(s, id, key, data, len, out, out_cap, check_key, &length);
  if (r == CODEC_INTERNAL) {
    napi_throw_error(env, NULL, "decode: OpenSSL refused the digest");
    return NULL;
  }
  if (r == CODEC_NO_MEMORY) {
    napi_throw_error(env, NULL, "decode: out of memory");
    return NULL;
  }
  if (r != 0) return failure(env, r, r == TOO_LARGE || r == CORRUPT || r == KEY_MISMATCH ? length : 0);
  napi_value result;
  if (napi_create_int64(env, length, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  State *s = codec_state_new();
  if (s == NULL) {
    napi_throw_error(env, NULL, "flistcodec: Node's OpenSSL lacks BLAKE2B-512 or AES-256-GCM");
    return NULL;
  }
  // OpenSSL before 3.2 (Node 22's) has no settable BLAKE2b length: refuse to
  // load there (the caller falls back to hash-wasm) rather than fail per chunk
  static const uint8_t abc256[HASH_LEN] = {0xbd, 0xdd, 0x81, 0x3c, 0x63, 0x42, 0x39, 0x72, 0x31, 0x71, 0xef, 0x3f, 0xee, 0x98, 0x57, 0x9b,
                                           0x94, 0x96, 0x4e, 0x3b, 0xb1, 0xcb, 0x3e, 0x42, 0x72, 0x62, 0xc8, 0xc0, 0x68, 0xd5, 0x23, 0x19};
  uint8_t probe[HASH_LEN];
  if (!digest(s, (const uint8_t *)"abc", 3, probe, HASH_LEN) || memcmp(probe, abc256, HASH_LEN) != 0) {
    free_state(env, s, NULL);
    napi_throw_error(env, NULL, "flistcodec: Node's OpenSSL cannot give a 32-byte BLAKE2b (it needs OpenSSL 3.2 or later)");
    return NULL;
  }
  if (napi_set_instance_data(env, s, free_state, NULL) != napi_ok) {
    free_state(env, s, NULL);
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "hash", NAPI_AUTO_LENGTH, hash, s, &fn) != napi_ok || napi_set_named_property(env, exports, "hash", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, s, &fn) != napi_ok || napi_set_named_property(env, exports, "decode", fn) != napi_ok) return NULL;
  if (!register_unpack_files(env, exports)) return NULL;
  return exports;
}
