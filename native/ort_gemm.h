#ifndef VATT_ORT_GEMM_H
#define VATT_ORT_GEMM_H
#include <stddef.h>
#include <stdint.h>

typedef struct ort_gemm_session ort_gemm_session;

// Each returns 0 on success, else 1 with a message written to `message` (at most `size` bytes).
int ort_gemm_open(const char *library, char *message, size_t size);
ort_gemm_session *ort_gemm_session_create(const void *model, size_t bytes, int threads, char *message, size_t size);
void ort_gemm_session_release(ort_gemm_session *s);
// Runs the session's one-node graph on A (dims_a), B (dims_b) into out (dims_out); len_* are element counts.
int ort_gemm_run(ort_gemm_session *s, const float *a, const int64_t *dims_a, size_t rank_a, const float *b,
                 const int64_t *dims_b, size_t rank_b, float *out, const int64_t *dims_out, size_t rank_out,
                 size_t len_a, size_t len_b, size_t len_out, char *message, size_t size);
#endif
