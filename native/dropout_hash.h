#ifndef VATT_DROPOUT_HASH_H
#define VATT_DROPOUT_HASH_H
#include <stdint.h>

// Dropout masks are counter-based: element i of a mask keyed by words k0..k2 (model/ops.ts dropoutWords) is kept
// when hash(i) >= the rate's threshold. Each element is drawn on its own, so the loops vectorise (a sequential
// generator cost ~1.5 ns per element, ~4 ms of a tiny training step) and a backward pass can draw any element
// again. native/kernels.ts `dropoutBits` is the same function in JavaScript.

// murmur3's 32-bit finaliser (core/random.ts fmix32).
static inline uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

static inline uint32_t dropout_bits(uint32_t index, uint32_t k0, uint32_t k1, uint32_t k2) {
  return fmix32(fmix32(fmix32(index ^ k0) + k1) ^ k2);
}

// Elements with bits >= this are kept: ceil(rate * 2^32), at most 2^32 - 1.
static inline uint32_t dropout_threshold(double rate) {
  double t = rate * 4294967296.0;
  uint64_t c = (uint64_t)t;
  if ((double)c < t) c++;
  return c > 0xffffffffu ? 0xffffffffu : (uint32_t)c;
}
#endif
