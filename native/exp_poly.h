#ifndef VATT_EXP_POLY_H
#define VATT_EXP_POLY_H
#include <math.h>
#include <stdint.h>
#include <string.h>

// exp as a Cephes-style polynomial (~1 ulp) that the compiler can vectorise (libm's expf is a call per element).
static inline float exp_poly(float x) {
  x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
  float n = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // x - n ln 2 in two parts (Cody-Waite)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;  // 2^n
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
#endif
