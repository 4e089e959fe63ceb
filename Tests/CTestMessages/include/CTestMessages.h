// libprotobuf-c round trips for the differential tests: decode with libprotobuf-c, encode again.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Unpacks `quad.test.v1.Everything` from `input` with libprotobuf-c and packs it again into a
/// malloc'd buffer (`*output`, `*output_length`; free it with `free`). Returns 0, or -1 when
/// libprotobuf-c rejects the input.
int quadtest_everything_repack(const uint8_t *input, size_t length, uint8_t **output, size_t *output_length);
