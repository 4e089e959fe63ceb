// System-library shim: the one place Swift sees zlib's C API. The init functions are macros in
// zlib.h, so thin inline wrappers give Swift something to call.
#pragma once
#include <zlib.h>

/// deflate with a gzip wrapper (window bits 15 + 16), default strategy.
static inline int CZlib_deflateInitGzip(z_streamp stream, int level) {
  return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/// inflate expecting a gzip wrapper (window bits 15 + 16).
static inline int CZlib_inflateInitGzip(z_streamp stream) {
  return inflateInit2(stream, 15 + 16);
}
