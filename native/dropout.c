// Inverted dropout for the model (model/ops.ts `dropout`): a mask, or x times the mask without making it, drawn
// with the counter-based dropout_bits (dropout_hash.h).
#include "dropout.h"

#include "dropout_hash.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES void dropout_mask(float *restrict out, size_t n, double rate, const uint32_t words[4]) {
  const uint32_t threshold = dropout_threshold(rate), k0 = words[0], k1 = words[1], k2 = words[2];
  const float kept = (float)(1.0 / (1.0 - rate));
  for (size_t i = 0; i < n; i++) out[i] = dropout_bits((uint32_t)i, k0, k1, k2) >= threshold ? kept : 0.0f;
}

CLONES void dropout_apply(const float *x, float *out, size_t n, double rate, const uint32_t words[4]) {
  const uint32_t threshold = dropout_threshold(rate), k0 = words[0], k1 = words[1], k2 = words[2];
  const float kept = (float)(1.0 / (1.0 - rate));
  for (size_t i = 0; i < n; i++) out[i] = dropout_bits((uint32_t)i, k0, k1, k2) >= threshold ? x[i] * kept : 0.0f;
}
