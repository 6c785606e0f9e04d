// The fused optimiser update of model/fast/optim.ts in C: the global-norm pass and the Adam update over a
// parameter, its slots and its gradient, in place on the wasm heap, vectorised by the compiler. A training run's
// word table alone is 65,536 x 64 (tiny) to 65,536 x 300 entries, all updated every step by dense Adam.
#include "optim.h"

#include <math.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES double sum_squares(const float *g, size_t n) {
  double total = 0;
  float partial = 0;
  // Float partial sums over blocks (vectorised), added up in double: NaN gradients count as 0.
  for (size_t start = 0; start < n; start += 4096) {
    size_t end = start + 4096 < n ? start + 4096 : n;
    partial = 0;
    for (size_t i = start; i < end; i++) {
      float x = g[i];
      partial += x == x ? x * x : 0.0f;
    }
    total += partial;
  }
  return total;
}

CLONES double adam_update(float *restrict p, float *restrict m, float *restrict v, const float *restrict g,
                          size_t n, float factor, double beta1, double beta2, float epsilon, float lr_t) {
  // 1 - beta in double: in float, 1 - 0.999f keeps only ~4 digits.
  const float b1 = (float)beta1, b2 = (float)beta2, c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
  double total = 0;
  // The gradient's sum of squares on the way, as sum_squares computes it: a caller that does not clip needs no
  // separate pass for the norm it reports.
  for (size_t start = 0; start < n; start += 4096) {
    const size_t end = start + 4096 < n ? start + 4096 : n;
    float partial = 0;
    for (size_t i = start; i < end; i++) {
      float raw = g[i];
      raw = raw == raw ? raw : 0.0f;
      partial += raw * raw;
      const float x = raw * factor;
      float mi = m[i] * b1 + x * c1;
      float vi = v[i] * b2 + x * x * c2;
      m[i] = mi;
      v[i] = vi;
      p[i] -= mi / (sqrtf(vi) + epsilon) * lr_t;
    }
    total += partial;
  }
  return total;
}

// Adam where g is zero outside the listed rows: those rows take adam_update, the others the same update with a zero
// gradient (m and v decay, p moves by the decayed moments) without reading g there. The updates are adam_update's;
// the returned sum of squares is added up row by row, so it can differ from adam_update's in the last digits.
CLONES double adam_update_rows(float *restrict p, float *restrict m, float *restrict v, const float *restrict g,
                               size_t n, size_t width, const int32_t *rows, size_t count, float factor,
                               double beta1, double beta2, float epsilon, float lr_t) {
  const float b1 = (float)beta1, b2 = (float)beta2, c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
  const float zero = 0.0f * factor;
  double total = 0;
  size_t start = 0;  // first element not yet updated
  for (size_t r = 0; r <= count; r++) {
    const size_t end = r < count ? (size_t)rows[r] * width : n;
    for (size_t i = start; i < end; i++) {
      const float mi = m[i] * b1 + zero * c1;
      const float vi = v[i] * b2 + zero * zero * c2;
      m[i] = mi;
      v[i] = vi;
      p[i] -= mi / (sqrtf(vi) + epsilon) * lr_t;
    }
    if (r == count) break;
    total += adam_update(p + end, m + end, v + end, g + end, width, factor, beta1, beta2, epsilon, lr_t);
    start = end + width;
  }
  return total;
}
