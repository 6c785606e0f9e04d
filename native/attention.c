// The core of multi-head attention, softmax(scale q k^T + bias) v with dropout on the probabilities, as one pass
// each way for the wasm backend's fast path (model/fast/index.ts). Composed from tfjs ops it is ~15 kernels forward
// (head split and join transposes, two batched products, scale, bias, softmax, dropout) and ~30 backward, each a
// pass over [B, H, N, N] or [B, N, D]; at the tiny preset's sizes (N <= 65, 16-wide heads) their calls cost more
// than the arithmetic.
//
// q, k, v and the output stay in the projections' layout [B, N, H * dh], so no head transposes are needed. The
// dropout mask is native/kernels.ts dropoutMask's over the [B, H, N, N] probabilities (counter-based, element
// index row-major), so the fused op gives the composed one's result, and the backward pass draws the same mask
// again from the same words instead of keeping it. The backward pass also recomputes the probabilities
// from q and k (as FlashAttention does) rather than keeping [B, H, N, N] per layer alive until then.
//
// Query rows go ROWS at a time: every key, value and gradient row loaded serves all of them, and their partial
// results stay in registers (for heads of 16, 32, 48 or 64 floats).
#include "attention.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dropout_hash.h"
#include "exp_poly.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define INLINE static inline __attribute__((always_inline))

enum { ROWS = 4 };

// Sixteen floats: one AVX-512 register, two AVX2 ones. The compiler turns plain loops over a 16-float head into
// scalar or 4-wide code, so the row products are written with it.
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

static inline f32x16 load16(const float *p) {
  f32x16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store16(float *p, f32x16 v) { memcpy(p, &v, sizeof v); }

// Tokens rounded up to whole 16-float chunks: the transposed heads are zero padded to this width so the key loops
// work a chunk at a time.
static inline size_t padded(size_t n) { return (n + 15) & ~(size_t)15; }

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

// Gathers head h of x (n rows of d floats) transposed into t ([dh, padded(n)], zero padded).
static void head_transposed(const float *restrict x, float *restrict t, size_t n, size_t d, size_t h, size_t dh) {
  const size_t width = padded(n);
  for (size_t c = 0; c < dh; c++) {
    float *restrict row = t + c * width;
    for (size_t j = 0; j < n; j++) row[j] = x[j * d + h * dh + c];
    for (size_t j = n; j < width; j++) row[j] = 0.0f;
  }
}

// out[r][j] = a_r . t[:, j] for R rows a_r (stride d) and every j < padded(n); t is a head transposed by
// head_transposed, out R rows of padded(n).
INLINE void row_products(const float *restrict a, size_t d, const float *restrict t, float *restrict out, size_t n,
                         size_t dh, const int R) {
  const size_t width = padded(n);
  for (size_t j = 0; j < width; j += 16) {
    f32x16 acc[ROWS] = {{0}};
    for (size_t c = 0; c < dh; c++) {
      const f32x16 column = load16(t + c * width + j);
      for (int r = 0; r < R; r++) acc[r] += a[r * d + c] * column;
    }
    for (int r = 0; r < R; r++) store16(out + r * width + j, acc[r]);
  }
}

// out_r = sum_j w[r][j] rows_j for R rows (out stride d; w R rows of padded(n); rows n rows of stride d).
INLINE void weighted_sums(float *restrict out, const float *restrict w, const float *restrict rows, size_t n,
                          size_t d, size_t dh, const int R) {
  const size_t width = padded(n);
  if (dh % 16 == 0 && dh <= 64) {
    f32x16 acc[ROWS][4] = {{{0}}};
    for (size_t j = 0; j < n; j++) {
      for (size_t t = 0; t < dh / 16; t++) {
        const f32x16 x = load16(rows + j * d + 16 * t);
        for (int r = 0; r < R; r++) acc[r][t] += w[r * width + j] * x;
      }
    }
    for (int r = 0; r < R; r++)
      for (size_t t = 0; t < dh / 16; t++) store16(out + r * d + 16 * t, acc[r][t]);
    return;
  }
  for (int r = 0; r < R; r++) {
    float *restrict o = out + r * d;
    for (size_t c = 0; c < dh; c++) o[c] = 0.0f;
    for (size_t j = 0; j < n; j++)
      for (size_t c = 0; c < dh; c++) o[c] += w[r * width + j] * rows[j * d + c];
  }
}

// rows_j += sum_r w[r][j] x_r for every j < n (rows and x stride d; w R rows of padded(n)).
INLINE void rank_update(float *restrict rows, const float *restrict w, const float *restrict x, size_t n, size_t d,
                        size_t dh, const int R) {
  const size_t width = padded(n);
  if (dh % 16 == 0 && dh <= 64) {
    f32x16 xs[ROWS][4];
    for (int r = 0; r < R; r++)
      for (size_t t = 0; t < dh / 16; t++) xs[r][t] = load16(x + r * d + 16 * t);
    for (size_t j = 0; j < n; j++) {
      for (size_t t = 0; t < dh / 16; t++) {
        f32x16 y = load16(rows + j * d + 16 * t);
        for (int r = 0; r < R; r++) y += w[r * width + j] * xs[r][t];
        store16(rows + j * d + 16 * t, y);
      }
    }
    return;
  }
  for (size_t j = 0; j < n; j++)
    for (int r = 0; r < R; r++)
      for (size_t c = 0; c < dh; c++) rows[j * d + c] += w[r * width + j] * x[r * d + c];
}

// Scores (scale, bias) -> probabilities, in place over one row of n.
static inline void softmax_row(float *restrict p, const float *restrict bias, size_t n, float scale) {
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

// Dropout on the probabilities: the mask's seed words and the index of this (batch item, head)'s element 0.
struct dropout {
  double rate;
  const uint32_t *words;
  size_t first;
};

// Multipliers (0 or 1 / (1 - rate); all 1 at rate 0) of row i's n mask elements.
static inline void dropout_row(float *restrict m, size_t n, const struct dropout *drop, size_t i) {
  if (drop->rate <= 0) {
    for (size_t j = 0; j < n; j++) m[j] = 1.0f;
    return;
  }
  const uint32_t threshold = dropout_threshold(drop->rate);
  const uint32_t k0 = drop->words[0], k1 = drop->words[1], k2 = drop->words[2];
  const float kept = (float)(1.0 / (1.0 - drop->rate));
  const size_t first = drop->first + i * n;
  for (size_t j = 0; j < n; j++) m[j] = dropout_bits((uint32_t)(first + j), k0, k1, k2) >= threshold ? kept : 0.0f;
}

// One (batch item, head): where a block of R query rows from i0 goes.
struct head {
  const float *q, *k, *v, *bias, *dout;  // bias: this head's [n, n] or NULL; dout: backward only
  float *probs;                          // this head's [n, n] softmax probabilities, kept or read back, or NULL
  float *out, *dq, *dk, *dv, *dscores;   // forward: out; backward: dq, dk, dv and dscores (or NULL)
  float *kt, *vt, *p, *m, *dp, *pm;      // scratch: transposed heads [dh, width], rows [R, width]
  size_t n, d, h;  // the head size is a parameter of the row functions, a constant where it is a usual one
  float scale;
  struct dropout drop;
};

INLINE void forward_rows(const struct head *s, size_t i0, const size_t dh, const int R) {
  const size_t n = s->n, d = s->d, width = padded(n), col = s->h * dh;
  row_products(s->q + i0 * d + col, d, s->kt, s->p, n, dh, R);
  for (int r = 0; r < R; r++) {
    float *restrict p = s->p + r * width;
    softmax_row(p, s->bias ? s->bias + (i0 + r) * n : NULL, n, s->scale);
    if (s->probs) memcpy(s->probs + (i0 + r) * n, p, sizeof(float) * n);
    if (s->drop.rate > 0) {
      dropout_row(s->m, n, &s->drop, i0 + r);
      for (size_t j = 0; j < n; j++) p[j] *= s->m[j];
    }
  }
  weighted_sums(s->out + i0 * d + col, s->p, s->v + col, n, d, dh, R);
}

INLINE void backward_rows(const struct head *s, size_t i0, const size_t dh, const int R) {
  const size_t n = s->n, d = s->d, width = padded(n), col = s->h * dh;
  // The probabilities: kept by the forward pass (small heads), else recomputed from q and k.
  if (!s->probs) row_products(s->q + i0 * d + col, d, s->kt, s->p, n, dh, R);
  row_products(s->dout + i0 * d + col, d, s->vt, s->dp, n, dh, R);  // d(p m)_j = dout_i . v_j
  for (int r = 0; r < R; r++) {
    float *restrict p = s->p + r * width, *restrict m = s->m + r * width, *restrict dp = s->dp + r * width,
                    *restrict pm = s->pm + r * width;
    if (s->probs) memcpy(p, s->probs + (i0 + r) * n, sizeof(float) * n);
    else softmax_row(p, s->bias ? s->bias + (i0 + r) * n : NULL, n, s->scale);
    dropout_row(m, n, &s->drop, i0 + r);
    // Through the dropout and the softmax: ds_j = p_j (dp_j m_j - sum_l p_l dp_l m_l).
    float dot = 0.0f;
    for (size_t j = 0; j < n; j++) {
      pm[j] = p[j] * m[j];
      dp[j] *= m[j];
      dot += p[j] * dp[j];
    }
    for (size_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - dot);
    if (s->dscores) memcpy(s->dscores + (i0 + r) * n, dp, sizeof(float) * n);
    for (size_t j = 0; j < n; j++) dp[j] *= s->scale;
  }
  rank_update(s->dv + col, s->pm, s->dout + i0 * d + col, n, d, dh, R);  // dv_j += (p m)_ij dout_i
  weighted_sums(s->dq + i0 * d + col, s->dp, s->k + col, n, d, dh, R);  // dq_i = scale sum_j ds_ij k_j
  rank_update(s->dk + col, s->dp, s->q + i0 * d + col, n, d, dh, R);    // dk_j += scale ds_ij q_i
}

// All query rows of one head, R at a time, with the head size a constant where it is a usual one.
INLINE void run_head(const struct head *s, int backward, const size_t dh) {
  size_t i = 0;
  for (; i + ROWS <= s->n; i += ROWS) {
    if (backward) backward_rows(s, i, dh, ROWS);
    else forward_rows(s, i, dh, ROWS);
  }
  for (; i < s->n; i++) {
    if (backward) backward_rows(s, i, dh, 1);
    else forward_rows(s, i, dh, 1);
  }
}

// One call's arguments, and which (batch item, head) pairs a worker takes: first, first + step, ...
struct job {
  const float *q, *k, *v, *bias, *dout;
  float *probs;
  float *out, *dk, *dv, *dscores;
  size_t batch, tokens, heads, head_dim;
  float scale;
  double rate;
  const uint32_t *words;
  int backward;
  size_t first, step;
  int status;
};

INLINE void run_pairs(struct job *j) {
  const size_t n = j->tokens, dh = j->head_dim, d = j->heads * dh, width = padded(n);
  float *scratch = malloc(sizeof(float) * (2 * dh + 4 * ROWS) * width);
  if (!scratch) {
    j->status = -1;
    return;
  }
  float *kt = scratch, *vt = kt + dh * width, *p = vt + dh * width;
  for (size_t pair = j->first; pair < j->batch * j->heads; pair += j->step) {
    const size_t b = pair / j->heads, h = pair % j->heads, base = b * n * d, scores = pair * n * n;
    const struct head s = {
        .q = j->q + base,
        .k = j->k + base,
        .v = j->v + base,
        .bias = j->bias ? j->bias + scores : NULL,
        .probs = j->probs ? j->probs + scores : NULL,
        .dout = j->backward ? j->dout + base : NULL,
        .out = j->backward ? NULL : j->out + base,
        .dq = j->backward ? j->out + base : NULL,
        .dk = j->backward ? j->dk + base : NULL,
        .dv = j->backward ? j->dv + base : NULL,
        .dscores = j->dscores ? j->dscores + scores : NULL,
        .kt = kt,
        .vt = vt,
        .p = p,
        .m = p + ROWS * width,
        .dp = p + 2 * ROWS * width,
        .pm = p + 3 * ROWS * width,
        .n = n,
        .d = d,
        .h = h,
        .scale = j->scale,
        .drop = {j->rate, j->words, scores},
    };
    if (!(j->backward && s.probs)) head_transposed(s.k, kt, n, d, h, dh);
    if (j->backward) head_transposed(s.v, vt, n, d, h, dh);
    switch (dh) {
      case 16: run_head(&s, j->backward, 16); break;
      case 32: run_head(&s, j->backward, 32); break;
      case 64: run_head(&s, j->backward, 64); break;
      default: run_head(&s, j->backward, dh); break;
    }
  }
  free(scratch);
  j->status = 0;
}

// A worker thread's body, built per instruction set like the kernels above.
CLONES static void *worker(void *arg) {
  run_pairs(arg);
  return NULL;
}

enum { MAX_THREADS = 64 };

// Pairs are split over up to `threads` threads (this one included) when there is enough work to pay for starting
// them (~50 us each); each pair's rows of dq, dk, dv and dscores belong to it alone, so the results do not depend
// on the thread count.
static int run(struct job job, int threads) {
  const size_t pairs = job.batch * job.heads;
  const double work = (double)pairs * job.tokens * job.tokens * job.head_dim;
  size_t count = threads < 1 || work < (double)(1 << 22) ? 1 : (size_t)threads;
  if (count > pairs) count = pairs;
  if (count > MAX_THREADS) count = MAX_THREADS;
  if (job.backward) {
    memset(job.dk, 0, sizeof(float) * job.batch * job.tokens * job.heads * job.head_dim);
    memset(job.dv, 0, sizeof(float) * job.batch * job.tokens * job.heads * job.head_dim);
  }
  struct job jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (size_t t = 0; t < count; t++) {
    jobs[t] = job;
    jobs[t].first = t;
    jobs[t].step = count;
  }
  for (size_t t = 1; t < count; t++) started[t] = pthread_create(&ids[t], NULL, worker, &jobs[t]) == 0;
  worker(&jobs[0]);
  int status = jobs[0].status;
  for (size_t t = 1; t < count; t++) {
    if (started[t]) pthread_join(ids[t], NULL);
    else worker(&jobs[t]);  // no thread to be had: this one does the share
    if (jobs[t].status != 0) status = jobs[t].status;
  }
  return status;
}

int attention_forward(const float *q, const float *k, const float *v, const float *bias, float *out, float *probs,
                      size_t batch, size_t tokens, size_t heads, size_t head_dim, float scale, double rate,
                      const uint32_t words[4], int threads) {
  const struct job job = {.q = q, .k = k, .v = v, .bias = bias, .out = out, .probs = probs, .batch = batch,
                          .tokens = tokens, .heads = heads, .head_dim = head_dim, .scale = scale, .rate = rate,
                          .words = words};
  return run(job, threads);
}

int attention_backward(const float *q, const float *k, const float *v, const float *bias, const float *probs,
                       const float *dout, float *dq, float *dk, float *dv, float *dscores, size_t batch,
                       size_t tokens, size_t heads, size_t head_dim, float scale, double rate,
                       const uint32_t words[4], int threads) {
  // The backward pass only reads the kept probabilities.
  const struct job job = {.q = q, .k = k, .v = v, .bias = bias, .probs = (float *)probs, .dout = dout, .out = dq,
                          .dk = dk, .dv = dv,
                          .dscores = dscores, .batch = batch, .tokens = tokens, .heads = heads,
                          .head_dim = head_dim, .scale = scale, .rate = rate, .words = words, .backward = 1};
  return run(job, threads);
}
