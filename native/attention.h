#ifndef VATT_ATTENTION_H
#define VATT_ATTENTION_H
#include <stddef.h>
#include <stdint.h>

// out[b, i, h] = sum_j dropout(softmax_j(scale q[b, i, h] . k[b, j, h] + bias[b, h, i, j])) v[b, j, h], with q, k,
// v and out [batch, tokens, heads * head_dim] and bias [batch, heads, tokens, tokens] or NULL. Dropout keeps a
// probability where its sfc32 draw (seeded by words, one per [B, H, N, N] element in order) is >= rate * 2^32 and
// scales it by 1 / (1 - rate); rate 0 draws nothing. Work is split over up to `threads` threads when large enough;
// the results do not depend on it. When probs is not NULL ([batch, heads, tokens, tokens]) the softmax
// probabilities (before dropout) are kept there for attention_backward. Returns 0, or -1 when scratch memory is
// not available.
int attention_forward(const float *q, const float *k, const float *v, const float *bias, float *out, float *probs,
                      size_t batch, size_t tokens, size_t heads, size_t head_dim, float scale, double rate,
                      const uint32_t words[4], int threads);

// The gradients of attention_forward (same arguments) given dout: dq, dk, dv, and the scores' gradient in
// dscores ([batch, heads, tokens, tokens], the bias's before any broadcast is summed) unless it is NULL. probs:
// what attention_forward kept, or NULL to recompute the probabilities from q and k.
int attention_backward(const float *q, const float *k, const float *v, const float *bias, const float *probs,
                       const float *dout, float *dq, float *dk, float *dv, float *dscores, size_t batch,
                       size_t tokens, size_t heads, size_t head_dim, float scale, double rate,
                       const uint32_t words[4], int threads);
#endif
