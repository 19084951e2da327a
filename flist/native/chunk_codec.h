// The chunk decode of chunk_codec.c for the other native parts of the
// addon (unpack_files.c), without JavaScript values.
#ifndef ZEROBOOT_CHUNK_CODEC_H
#define ZEROBOOT_CHUNK_CODEC_H
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32

// codec_decode() results: 0, or why a chunk was refused (the numbers
// flist/codec-addon.ts knows), or the codec's own trouble
enum { ID_MISMATCH = 1, DECRYPT = 2, BAD_PREAMBLE = 3, TOO_LARGE = 4, CORRUPT = 5, KEY_MISMATCH = 6, CODEC_INTERNAL = 100, CODEC_NO_MEMORY = 101 };

/** Digest and cipher contexts and a scratch buffer: one per thread. */
typedef struct CodecState CodecState;
CodecState *codec_state_new(void);
void codec_state_free(CodecState *s);
/** Decodes a stored chunk into out[0..*length); *length is Snappy's announced length once known. */
int codec_decode(CodecState *s, const uint8_t *id, const uint8_t *key, const uint8_t *data, size_t len, uint8_t *out, size_t out_cap, bool check_key, int64_t *length);

/** Adds unpackFiles to the addon's exports; false with a JavaScript exception pending. */
bool register_unpack_files(napi_env env, napi_value exports);
#endif
