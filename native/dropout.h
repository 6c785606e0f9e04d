#ifndef VATT_DROPOUT_H
#define VATT_DROPOUT_H
#include <stddef.h>
#include <stdint.h>

// Inverted-dropout mask: 1 / (1 - rate) where element i's dropout_bits (dropout_hash.h, keyed by words[0..2]) reach
// the rate's threshold, else 0.
void dropout_mask(float *out, size_t n, double rate, const uint32_t words[4]);
// out = x * dropout_mask(n, rate, words), without the mask (out may be x).
void dropout_apply(const float *x, float *out, size_t n, double rate, const uint32_t words[4]);
#endif
