// LayerNorm and RMS norm over the last axis, forward and backward, for the wasm backend's fast path
// (model/fast/index.ts): composed from tfjs ops each is ~8 kernels forward and ~20 backward. Row statistics are
// recomputed in each pass (rows are short: the model width) rather than saved between kernels.
#include "norms.h"

#include <math.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Mean and 1 / sqrt(variance + eps) of one row (variance about the mean, as tf.moments).
static inline void row_stats(const float *x, int d, float eps, float *mean, float *rstd) {
  float sum = 0;
  for (int j = 0; j < d; j++) sum += x[j];
  float m = sum / d;
  float sq = 0;
  for (int j = 0; j < d; j++) sq += (x[j] - m) * (x[j] - m);
  *mean = m;
  *rstd = 1.0f / sqrtf(sq / d + eps);
}

// 1 / sqrt(mean(x^2) + eps) of one row.
static inline float row_rms(const float *x, int d, float eps) {
  float sq = 0;
  for (int j = 0; j < d; j++) sq += x[j] * x[j];
  return 1.0f / sqrtf(sq / d + eps);
}

CLONES void layer_norm(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                       float *restrict y, size_t rows, int d, float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float mean, rstd;
    row_stats(xr, d, eps, &mean, &rstd);
    for (int j = 0; j < d; j++) yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
CLONES void layer_norm_grad_x(const float *restrict x, const float *restrict gamma, const float *restrict dy,
                              float *restrict dx, size_t rows, int d, float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *dyr = dy + r * d;
    float *dxr = dx + r * d;
    float mean, rstd;
    row_stats(xr, d, eps, &mean, &rstd);
    float sum_g = 0, sum_gx = 0;
    for (int j = 0; j < d; j++) {
      float g = dyr[j] * gamma[j];
      sum_g += g;
      sum_gx += g * (xr[j] - mean) * rstd;
    }
    float mg = sum_g / d, mgx = sum_gx / d;
    for (int j = 0; j < d; j++) dxr[j] = rstd * (dyr[j] * gamma[j] - mg - (xr[j] - mean) * rstd * mgx);
  }
}

// dgamma[j] = sum over rows of dy * xhat.
CLONES void layer_norm_grad_gamma(const float *restrict x, const float *restrict dy, float *restrict dgamma,
                                  size_t rows, int d, float eps) {
  for (int j = 0; j < d; j++) dgamma[j] = 0;
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *dyr = dy + r * d;
    float mean, rstd;
    row_stats(xr, d, eps, &mean, &rstd);
    for (int j = 0; j < d; j++) dgamma[j] += dyr[j] * (xr[j] - mean) * rstd;
  }
}

CLONES void rms_norm(const float *restrict x, const float *restrict scale, float *restrict y, size_t rows, int d,
                     float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float inv = row_rms(xr, d, eps);
    for (int j = 0; j < d; j++) yr[j] = xr[j] * inv * scale[j];
  }
}

// dx = r g - r^3 x mean(g x), g = dy * scale, r = 1 / sqrt(mean(x^2) + eps).
CLONES void rms_norm_grad_x(const float *restrict x, const float *restrict scale, const float *restrict dy,
                            float *restrict dx, size_t rows, int d, float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *dyr = dy + r * d;
    float *dxr = dx + r * d;
    float inv = row_rms(xr, d, eps);
    float sum_gx = 0;
    for (int j = 0; j < d; j++) sum_gx += dyr[j] * scale[j] * xr[j];
    float k = inv * inv * inv * sum_gx / d;
    for (int j = 0; j < d; j++) dxr[j] = inv * dyr[j] * scale[j] - k * xr[j];
  }
}

// dscale[j] = sum over rows of dy * x * r.
CLONES void rms_norm_grad_scale(const float *restrict x, const float *restrict dy, float *restrict dscale,
                                size_t rows, int d, float eps) {
  for (int j = 0; j < d; j++) dscale[j] = 0;
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *dyr = dy + r * d;
    float inv = row_rms(xr, d, eps);
    for (int j = 0; j < d; j++) dscale[j] += dyr[j] * xr[j] * inv;
  }
}
