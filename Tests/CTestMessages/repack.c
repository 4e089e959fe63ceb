#include "CTestMessages.h"
#include <stdlib.h>
#include "quad/test/v1/everything.pb-c.h"

int quadtest_everything_repack(const uint8_t *input, size_t length, uint8_t **output, size_t *output_length) {
  Quad__Test__V1__Everything *m = quad__test__v1__everything__unpack(NULL, length, input);
  if (m == NULL) return -1;
  size_t n = quad__test__v1__everything__get_packed_size(m);
  uint8_t *buffer = malloc(n > 0 ? n : 1);
  if (buffer == NULL) {
    quad__test__v1__everything__free_unpacked(m, NULL);
    return -1;
  }
  *output_length = quad__test__v1__everything__pack(m, buffer);
  *output = buffer;
  quad__test__v1__everything__free_unpacked(m, NULL);
  return 0;
}
