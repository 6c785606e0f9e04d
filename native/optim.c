// The fused optimiser update of model/fast-optim.ts in C: the global-norm pass and the Adam update over a
// parameter, its slots and its gradient, in place on the wasm heap, vectorised by the compiler. A training run's
// word table alone is 65,536 x 64 (tiny) to 65,536 x 300 entries, all updated every step by dense Adam.
#include "optim.h"

#include <math.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

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

CLONES void adam_update(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                        float factor, double beta1, double beta2, float epsilon, float lr_t) {
  // 1 - beta in double: in float, 1 - 0.999f keeps only ~4 digits.
  const float b1 = (float)beta1, b2 = (float)beta2, c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
  for (size_t i = 0; i < n; i++) {
    float x = g[i];
    x = x == x ? x * factor : 0.0f;
    float mi = m[i] * b1 + x * c1;
    float vi = v[i] * b2 + x * x * c2;
    m[i] = mi;
    v[i] = vi;
    p[i] -= mi / (sqrtf(vi) + epsilon) * lr_t;
  }
}
