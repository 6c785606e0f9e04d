// GELU (exact: 0.5 x (1 + erf(x / sqrt 2)), Keras' default) and its derivative in one vectorised pass each, for the
// wasm backend's fast path (model/fast/index.ts): composed from tfjs ops they are ~5 kernels forward and ~10 backward,
// each a full pass over the MLP activations. erf is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the formula
// tfjs's own erf kernels use; exp is a Cephes-style polynomial (~1 ulp) that the compiler can vectorise.
#include "activations.h"

#include <math.h>

#include "exp_poly.h"

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// erf(z) and, in *gauss, exp(-z^2).
static inline float erf_as(float z, float *gauss) {
  const float p = 0.3275911f, a1 = 0.254829592f, a2 = -0.284496736f, a3 = 1.421413741f, a4 = -1.453152027f,
              a5 = 1.061405429f;
  float v = fabsf(z);
  float t = 1.0f / (1.0f + p * v);
  float e = exp_poly(-v * v);
  *gauss = e;
  float y = 1.0f - (((((a5 * t + a4) * t) + a3) * t + a2) * t + a1) * t * e;
  return z < 0 ? -y : y;
}

CLONES void gelu_forward(const float *restrict x, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float g;
    y[i] = 0.5f * x[i] * (1.0f + erf_as(x[i] * 0.70710678118654752f, &g));
  }
}

CLONES void gelu_backward(const float *restrict x, const float *restrict dy, float *restrict dx, size_t n) {
  const float inv_sqrt_2pi = 0.39894228040143268f;
  for (size_t i = 0; i < n; i++) {
    float g;
    float cdf = 0.5f * (1.0f + erf_as(x[i] * 0.70710678118654752f, &g));
    dx[i] = dy[i] * (cdf + x[i] * g * inv_sqrt_2pi);  // g = exp(-x^2 / 2)
  }
}
