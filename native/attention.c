// The core of multi-head attention, softmax(scale q k^T + bias) v with dropout on the probabilities, as one pass
// each way for the wasm backend's fast path (model/kernels.ts). Composed from tfjs ops it is ~15 kernels forward
// (head split and join transposes, two batched products, scale, bias, softmax, dropout) and ~30 backward, each a
// pass over [B, H, N, N] or [B, N, D]; at the tiny preset's sizes (N <= 65, 16-wide heads) their calls cost more
// than the arithmetic.
//
// q, k, v and the output stay in the projections' layout [B, N, H * dh], so no head transposes are needed. The
// dropout mask is pipeline/native.ts dropoutMask's over the [B, H, N, N] probabilities (counter-based, element
// index row-major), so the fused op gives the composed one's result, and the backward pass draws the same mask
// again from the same words instead of keeping it. The backward pass also recomputes the probabilities
// from q and k (as FlashAttention does) rather than keeping [B, H, N, N] per layer alive until then.
#include "attention.h"

#include <stdlib.h>
#include <string.h>

#include "exp_poly.h"
#include "dropout_hash.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

struct dims {
  size_t b, n, h, dh, d;
};

// Sixteen floats: one AVX-512 register, two AVX2 ones. The row updates below (a head's dh floats) are written
// with it because the compiler turns the plain loops over a 16-float head into scalar or 4-wide code.
typedef float f32x16 __attribute__((vector_size(64)));

static inline f32x16 load16(const float *p) {
  f32x16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store16(float *p, f32x16 v) { memcpy(p, &v, sizeof v); }

typedef int32_t i32x16 __attribute__((vector_size(64)));

// max_j p[j] (a select per lane: the compiler will not vectorise a float max reduction without -ffast-math).
static inline float row_max(const float *restrict p, size_t n) {
  float max = -INFINITY;
  size_t j = 0;
  if (n >= 16) {
    f32x16 m = load16(p);
    for (j = 16; j + 16 <= n; j += 16) {
      f32x16 x = load16(p + j);
      i32x16 gt = x > m;
      m = (f32x16)(((i32x16)x & gt) | ((i32x16)m & ~gt));
    }
    for (int l = 0; l < 16; l++) max = m[l] > max ? m[l] : max;
  }
  for (; j < n; j++) max = p[j] > max ? p[j] : max;
  return max;
}

// y += a x over dh floats.
static inline __attribute__((always_inline)) void axpy(float *restrict y, float a, const float *restrict x,
                                                       size_t dh) {
  if (dh % 16 == 0) {
    for (size_t c = 0; c < dh; c += 16) store16(y + c, load16(y + c) + a * load16(x + c));
  } else {
    for (size_t c = 0; c < dh; c++) y[c] += a * x[c];
  }
}


// Tokens rounded up to whole 16-float chunks: the transposed heads are padded with zeros to this width so the
// products below work a chunk at a time.
static inline size_t padded(size_t n) { return (n + 15) & ~(size_t)15; }

// Gathers head h of x ([n, d] rows of one batch item) transposed into t ([dh, padded(n)], zero padded).
static void head_transposed(const float *restrict x, float *restrict t, const struct dims *s, size_t h) {
  const size_t width = padded(s->n);
  for (size_t c = 0; c < s->dh; c++) {
    float *restrict row = t + c * width;
    for (size_t j = 0; j < s->n; j++) row[j] = x[j * s->d + h * s->dh + c];
    for (size_t j = s->n; j < width; j++) row[j] = 0.0f;
  }
}

// out[j] = a . t[:, j] for all j < padded(n), a 16-wide chunk of j at a time held in a register over the dh
// products (t is a head transposed by head_transposed).
static inline __attribute__((always_inline)) void dot_columns(const float *restrict a, const float *restrict t,
                                                              float *restrict out, size_t n, size_t dh) {
  const size_t width = padded(n);
  for (size_t j = 0; j < width; j += 16) {
    f32x16 acc = {0};
    for (size_t c = 0; c < dh; c++) acc += a[c] * load16(t + c * width + j);
    store16(out + j, acc);
  }
}

// out[0..dh) = sum_j w[j] rows[j * d ..]: accumulated in registers for the usual head sizes (16, 32, 48, 64).
static inline __attribute__((always_inline)) void weighted_rows(float *restrict out, const float *restrict w,
                                                                const float *restrict rows, size_t n, size_t d,
                                                                size_t dh) {
  if (dh % 16 == 0 && dh <= 64) {
    f32x16 acc[4] = {{0}, {0}, {0}, {0}};
    for (size_t j = 0; j < n; j++) {
      const float *restrict r = rows + j * d;
      for (size_t t = 0; t < dh / 16; t++) acc[t] += w[j] * load16(r + 16 * t);
    }
    for (size_t t = 0; t < dh / 16; t++) store16(out + 16 * t, acc[t]);
  } else {
    for (size_t c = 0; c < dh; c++) out[c] = 0.0f;
    for (size_t j = 0; j < n; j++) axpy(out, w[j], rows + j * d, dh);
  }
}

// p[j] = softmax_j(scale q_i . k_j + bias[j]) for one query row; kt is the head's keys transposed, and p has room
// for padded(n) values.
static inline void softmax_row(const float *restrict qi, const float *restrict kt, const float *restrict bias,
                               float *restrict p, const struct dims *s, float scale) {
  const size_t n = s->n;
  dot_columns(qi, kt, p, n, s->dh);
  if (bias)
    for (size_t j = 0; j < n; j++) p[j] = p[j] * scale + bias[j];
  else
    for (size_t j = 0; j < n; j++) p[j] *= scale;
  const float max = row_max(p, n);
  float sum = 0.0f;
  for (size_t j = 0; j < n; j++) {
    const float shifted = p[j] - max;
    p[j] = shifted < -87.0f ? 0.0f : exp_poly(shifted);  // a masked key (bias -1e9) gets exactly 0, as expf gives
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (size_t j = 0; j < n; j++) p[j] *= inv;
}

// Dropout on the probabilities: the mask's seed words and element 0's index of this (batch item, head).
struct dropout {
  double rate;
  const uint32_t *words;
  size_t first;
};

// Multipliers (0 or 1 / (1 - rate)) of n mask elements from index `first` on.
static inline void dropout_row(float *restrict m, size_t n, const struct dropout *drop, size_t first) {
  const uint32_t threshold = dropout_threshold(drop->rate);
  const uint32_t k0 = drop->words[0], k1 = drop->words[1], k2 = drop->words[2];
  const float kept = (float)(1.0 / (1.0 - drop->rate));
  for (size_t j = 0; j < n; j++) m[j] = dropout_bits((uint32_t)(first + j), k0, k1, k2) >= threshold ? kept : 0.0f;
}

// One (batch item, head) of the forward pass. Inlined with a constant head_dim where the dispatch below knows it,
// so a row's output accumulates in registers rather than through memory.
static inline __attribute__((always_inline)) void forward_head(const float *restrict q, const float *restrict k,
                                                               const float *restrict v, const float *restrict bias,
                                                               float *restrict out, float *restrict scratch,
                                                               size_t n, size_t d, size_t h, const size_t dh,
                                                               float scale, const struct dropout *drop) {
  const struct dims s = {0, n, 0, dh, d};
  const size_t width = padded(n);
  float *kt = scratch, *p = kt + dh * width, *m = p + width;
  head_transposed(k, kt, &s, h);
  for (size_t i = 0; i < n; i++) {
    softmax_row(q + i * d + h * dh, kt, bias ? bias + i * n : NULL, p, &s, scale);
    if (drop->rate > 0) {
      dropout_row(m, n, drop, drop->first + i * n);
      for (size_t j = 0; j < n; j++) p[j] *= m[j];
    }
    weighted_rows(out + i * d + h * dh, p, v + h * dh, n, d, dh);
  }
}

CLONES int attention_forward(const float *restrict q, const float *restrict k, const float *restrict v,
                             const float *restrict bias, float *restrict out, size_t batch, size_t tokens,
                             size_t heads, size_t head_dim, float scale, double rate, const uint32_t words[4]) {
  const size_t n = tokens, d = heads * head_dim;
  float *scratch = malloc(sizeof(float) * (head_dim + 2) * padded(n));
  if (!scratch) return -1;
  for (size_t b = 0; b < batch; b++) {
    const size_t base = b * n * d;
    for (size_t h = 0; h < heads; h++) {
      const size_t scores = (b * heads + h) * n * n;
      const float *bh = bias ? bias + scores : NULL;
      const struct dropout drop = {rate, words, scores};
#define FORWARD(DH) forward_head(q + base, k + base, v + base, bh, out + base, scratch, n, d, h, DH, scale, &drop)
      switch (head_dim) {
        case 16: FORWARD(16); break;
        case 32: FORWARD(32); break;
        case 64: FORWARD(64); break;
        default: FORWARD(head_dim); break;
      }
#undef FORWARD
    }
  }
  free(scratch);
  return 0;
}

// One (batch item, head) of the backward pass; see forward_head.
static inline __attribute__((always_inline)) void backward_head(
    const float *restrict q, const float *restrict k, const float *restrict v, const float *restrict bias,
    const float *restrict dout, float *restrict dq, float *restrict dk, float *restrict dv, float *restrict dscores,
    float *restrict scratch, size_t n, size_t d, size_t h, const size_t dh, float scale,
    const struct dropout *drop) {
  const struct dims s = {0, n, 0, dh, d};
  const size_t width = padded(n);
  float *kt = scratch, *vt = kt + dh * width, *p = vt + dh * width, *m = p + width, *dp = m + width;
  head_transposed(k, kt, &s, h);
  head_transposed(v, vt, &s, h);
  for (size_t i = 0; i < n; i++) {
    const size_t row = i * d + h * dh;
    softmax_row(q + row, kt, bias ? bias + i * n : NULL, p, &s, scale);
    if (drop->rate > 0) dropout_row(m, n, drop, drop->first + i * n);
    else
      for (size_t j = 0; j < n; j++) m[j] = 1.0f;
    // dv_j += (p_j m_j) dout_i; d(p m)_j = dout_i . v_j
    const float *restrict go = dout + row;
    dot_columns(go, vt, dp, n, dh);
    for (size_t j = 0; j < n; j++) axpy(dv + j * d + h * dh, p[j] * m[j], go, dh);
    // Through the dropout and the softmax: ds_j = p_j (dp_j m_j - sum_l p_l dp_l m_l).
    float dot = 0.0f;
    for (size_t j = 0; j < n; j++) {
      dp[j] *= m[j];
      dot += p[j] * dp[j];
    }
    for (size_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - dot);
    if (dscores) memcpy(dscores + i * n, dp, sizeof(float) * n);
    // dq_i = scale sum_j ds_j k_j; dk_j += scale ds_j q_i
    for (size_t j = 0; j < n; j++) dp[j] *= scale;
    weighted_rows(dq + row, dp, k + h * dh, n, d, dh);
    for (size_t j = 0; j < n; j++) axpy(dk + j * d + h * dh, dp[j], q + row, dh);
  }
}

CLONES int attention_backward(const float *restrict q, const float *restrict k, const float *restrict v,
                              const float *restrict bias, const float *restrict dout, float *restrict dq,
                              float *restrict dk, float *restrict dv, float *restrict dscores, size_t batch,
                              size_t tokens, size_t heads, size_t head_dim, float scale, double rate,
                              const uint32_t words[4]) {
  const size_t n = tokens, d = heads * head_dim;
  float *scratch = malloc(sizeof(float) * (2 * head_dim + 3) * padded(n));
  if (!scratch) return -1;
  memset(dk, 0, sizeof(float) * batch * n * d);
  memset(dv, 0, sizeof(float) * batch * n * d);
  for (size_t b = 0; b < batch; b++) {
    const size_t base = b * n * d;
    for (size_t h = 0; h < heads; h++) {
      const size_t scores = (b * heads + h) * n * n;
      const float *bh = bias ? bias + scores : NULL;
      float *dsh = dscores ? dscores + scores : NULL;
      const struct dropout drop = {rate, words, scores};
#define BACKWARD(DH)                                                                                              \
  backward_head(q + base, k + base, v + base, bh, dout + base, dq + base, dk + base, dv + base, dsh, scratch, n, d, \
                h, DH, scale, &drop)
      switch (head_dim) {
        case 16: BACKWARD(16); break;
        case 32: BACKWARD(32); break;
        case 64: BACKWARD(64); break;
        default: BACKWARD(head_dim); break;
      }
#undef BACKWARD
    }
  }
  free(scratch);
  return 0;
}
