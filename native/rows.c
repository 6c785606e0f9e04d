// Row-wise loops of dense layers. sum_leading sums over the leading axes of a row-major array (out[j] = sum_i
// x[i * inner + j]): the gradient of every bias and broadcast add. The wasm backend's Sum reduces only the last axis, so for these it first transposes the whole
// array; here the rows are added in place, vectorised along the row.
#include "rows.h"

#include <string.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES void sum_leading(const float *restrict x, float *restrict out, size_t outer, size_t inner) {
  memset(out, 0, sizeof(float) * inner);
  for (size_t i = 0; i < outer; i++) {
    const float *restrict row = x + i * inner;
    for (size_t j = 0; j < inner; j++) out[j] += row[j];
  }
}

CLONES void add_rows(float *restrict x, const float *restrict row, size_t outer, size_t inner) {
  for (size_t i = 0; i < outer; i++) {
    float *restrict r = x + i * inner;
    for (size_t j = 0; j < inner; j++) r[j] += row[j];
  }
}

CLONES void add_into(float *restrict out, const float *restrict x, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] += x[i];
}
