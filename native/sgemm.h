#ifndef VATT_SGEMM_H
#define VATT_SGEMM_H
#include <stddef.h>

// C[b] = op(A[b]) @ op(B[b]) for b < batch, row-major: op(A) m x k (A stored k x m when trans_a), op(B) k x n (B
// stored n x k when trans_b), C m x n. Batch strides are in elements (0 broadcasts an operand). `threads` >= 1
// splits the columns. Returns 0, or 1 when its packing buffers could not be allocated.
int sgemm(const float *a, const float *b, float *c, size_t batch, size_t m, size_t n, size_t k, int trans_a,
          int trans_b, size_t stride_a, size_t stride_b, size_t stride_c, int threads);
// The microkernel in use ("avx512", "avx2" or "c"), and a way to force one (tests); 1 when it cannot run here.
const char *sgemm_kernel_name(void);
int sgemm_use_kernel(const char *name);
#endif
