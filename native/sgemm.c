// Single-precision matrix products of our own (model/fast/native-gemm.ts): C = op(A) @ op(B), row-major, op a
// transpose when asked, GotoBLAS-style. K is cut into blocks of at most KC; for each block the rows of op(A) are
// packed into MR-row panels (k-major: MR values per k; the AVX-512 kernel reads an untransposed A in place instead,
// packing only a last partial panel) and the columns of op(B), NB at a time, into NR-column panels
// (NR values per k); a register-blocked microkernel then multiplies one A panel by one B panel, holding the MR x NR
// tile of C in registers for the whole block. The A panel (MR x KC) stays in L1 while the B block (KC x NB, 256 KB) is
// streamed from L2. Edges are zero-padded in the packed copies and written back through a small tile.
//
// Three microkernels, picked once at load like native/nibble_scan.c: AVX-512 (12 x 32: 24 zmm accumulators),
// AVX2+FMA (6 x 16: 12 ymm) and plain C (4 x 16, left to the compiler's baseline vectorisation). The sum over k runs
// in the same order in every kernel (per output, k ascending within a block, blocks ascending), so results differ
// from a naive loop only by float rounding; they do not depend on the thread count.
#include "sgemm.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef KC_MAX
#define KC_MAX 256
#endif
#ifndef NB
#define NB 256  // columns of B packed per block (a multiple of every NR)
#endif
#define MR_MAX 12
#define NR_MAX 32

typedef void (*kernel_fn)(size_t kc, const float *a, const float *b, float *c, size_t ldc, int accumulate);
typedef void (*rows_kernel_fn)(size_t kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                               int accumulate);

typedef struct {
  kernel_fn kernel;
  int mr, nr;
  const char *name;
  rows_kernel_fn rows;  // A read in place (row-major, untransposed), or NULL: A is always packed
} kernel_info;

static void kernel_avx512_rows(size_t kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                               int accumulate);

// ---- Microkernels: c[i * ldc + j] (+)= sum_p a[p * mr + i] * b[p * nr + j] ----

__attribute__((target("avx512f"))) static void kernel_avx512(size_t kc, const float *a, const float *b, float *c,
                                                              size_t ldc, int accumulate) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  __m512 c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
  for (size_t p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#define ROW(i, r0, r1)                      \
  {                                         \
    const __m512 ai = _mm512_set1_ps(a[i]); \
    r0 = _mm512_fmadd_ps(ai, b0, r0);       \
    r1 = _mm512_fmadd_ps(ai, b1, r1);       \
  }
    ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
    ROW(6, c60, c61) ROW(7, c70, c71) ROW(8, c80, c81) ROW(9, c90, c91) ROW(10, ca0, ca1) ROW(11, cb0, cb1)
#undef ROW
    a += 12;
    b += 32;
  }
#define STORE(i, r0, r1)                                                                           \
  {                                                                                                \
    float *ci = c + (i) * ldc;                                                                     \
    if (accumulate) {                                                                              \
      r0 = _mm512_add_ps(r0, _mm512_loadu_ps(ci));                                                 \
      r1 = _mm512_add_ps(r1, _mm512_loadu_ps(ci + 16));                                            \
    }                                                                                              \
    _mm512_storeu_ps(ci, r0);                                                                      \
    _mm512_storeu_ps(ci + 16, r1);                                                                 \
  }
  STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41)
  STORE(5, c50, c51) STORE(6, c60, c61) STORE(7, c70, c71) STORE(8, c80, c81) STORE(9, c90, c91)
  STORE(10, ca0, ca1) STORE(11, cb0, cb1)
#undef STORE
}

// The same product with A read in place: 12 rows of a row-major A, `lda` apart (no packing: a transposing copy of
// A cost 15-25 % of the block's products). Rows come from four bases three rows apart, each addressed as base,
// base + lda and base + 2 lda.
__attribute__((target("avx512f"))) static void kernel_avx512_rows(size_t kc, const float *a, size_t lda,
                                                                   const float *b, float *c, size_t ldc,
                                                                   int accumulate) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  __m512 c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
  const float *r0 = a, *r3 = a + 3 * lda, *r6 = a + 6 * lda, *r9 = a + 9 * lda;
  for (size_t p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#define ROW(src, r0_, r1_)                   \
  {                                         \
    const __m512 ai = _mm512_set1_ps(src);  \
    r0_ = _mm512_fmadd_ps(ai, b0, r0_);     \
    r1_ = _mm512_fmadd_ps(ai, b1, r1_);     \
  }
    ROW(r0[0], c00, c01) ROW(r0[lda], c10, c11) ROW(r0[2 * lda], c20, c21)
    ROW(r3[0], c30, c31) ROW(r3[lda], c40, c41) ROW(r3[2 * lda], c50, c51)
    ROW(r6[0], c60, c61) ROW(r6[lda], c70, c71) ROW(r6[2 * lda], c80, c81)
    ROW(r9[0], c90, c91) ROW(r9[lda], ca0, ca1) ROW(r9[2 * lda], cb0, cb1)
#undef ROW
    r0++, r3++, r6++, r9++;
    b += 32;
  }
#define STORE(i, r0_, r1_)                                \
  {                                                       \
    float *ci = c + (i) * ldc;                            \
    if (accumulate) {                                     \
      r0_ = _mm512_add_ps(r0_, _mm512_loadu_ps(ci));      \
      r1_ = _mm512_add_ps(r1_, _mm512_loadu_ps(ci + 16)); \
    }                                                     \
    _mm512_storeu_ps(ci, r0_);                            \
    _mm512_storeu_ps(ci + 16, r1_);                       \
  }
  STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41)
  STORE(5, c50, c51) STORE(6, c60, c61) STORE(7, c70, c71) STORE(8, c80, c81) STORE(9, c90, c91)
  STORE(10, ca0, ca1) STORE(11, cb0, cb1)
#undef STORE
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(size_t kc, const float *a, const float *b, float *c,
                                                             size_t ldc, int accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (size_t p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#define ROW(i, r0, r1)                         \
  {                                            \
    const __m256 ai = _mm256_broadcast_ss(a + i); \
    r0 = _mm256_fmadd_ps(ai, b0, r0);          \
    r1 = _mm256_fmadd_ps(ai, b1, r1);          \
  }
    ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
    a += 6;
    b += 16;
  }
#define STORE(i, r0, r1)                                                                           \
  {                                                                                                \
    float *ci = c + (i) * ldc;                                                                     \
    if (accumulate) {                                                                              \
      r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ci));                                                 \
      r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ci + 8));                                             \
    }                                                                                              \
    _mm256_storeu_ps(ci, r0);                                                                      \
    _mm256_storeu_ps(ci + 8, r1);                                                                  \
  }
  STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41)
  STORE(5, c50, c51)
#undef STORE
}

static void kernel_c(size_t kc, const float *a, const float *b, float *c, size_t ldc, int accumulate) {
  float acc[4][16] = {{0}};
  for (size_t p = 0; p < kc; p++) {
    for (int i = 0; i < 4; i++) {
      const float ai = a[p * 4 + i];
      for (int j = 0; j < 16; j++) acc[i][j] += ai * b[p * 16 + j];
    }
  }
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < 16; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
  }
}

static kernel_info chosen = {kernel_c, 4, 16, "c", NULL};
static int selected;

static void select_kernel(void) {
  if (selected) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    chosen = (kernel_info){kernel_avx512, 12, 32, "avx512", kernel_avx512_rows};
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    chosen = (kernel_info){kernel_avx2, 6, 16, "avx2", NULL};
  }
  selected = 1;
}

const char *sgemm_kernel_name(void) {
  select_kernel();
  return chosen.name;
}

int sgemm_use_kernel(const char *name) {
  __builtin_cpu_init();
  selected = 1;
  if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f")) {
    chosen = (kernel_info){kernel_avx512, 12, 32, "avx512", kernel_avx512_rows};
  } else if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    chosen = (kernel_info){kernel_avx2, 6, 16, "avx2", NULL};
  } else if (strcmp(name, "c") == 0) {
    chosen = (kernel_info){kernel_c, 4, 16, "c", NULL};
  } else {
    return 1;
  }
  return 0;
}

// ---- Packing ----

// Rows [i0, i0 + mc) of op(A), k in [p0, p0 + kc), into panels of mr rows: dst[panel][p][i], zero past mc.
static void pack_a(const float *a, size_t lda, int trans, size_t i0, size_t mc, size_t p0, size_t kc, int mr,
                   float *dst) {
  for (size_t ip = 0; ip < mc; ip += mr) {
    const size_t rows = mc - ip < (size_t)mr ? mc - ip : (size_t)mr;
    if (!trans) {
      // A row-major m x k: row i is contiguous in k.
      for (size_t i = 0; i < rows; i++) {
        const float *src = a + (i0 + ip + i) * lda + p0;
        for (size_t p = 0; p < kc; p++) dst[p * mr + i] = src[p];
      }
    } else {
      // A stored k x m: for each k the mr rows are contiguous.
      for (size_t p = 0; p < kc; p++) {
        const float *src = a + (p0 + p) * lda + i0 + ip;
        for (size_t i = 0; i < rows; i++) dst[p * mr + i] = src[i];
      }
    }
    for (size_t i = rows; i < (size_t)mr; i++) {
      for (size_t p = 0; p < kc; p++) dst[p * mr + i] = 0;
    }
    dst += (size_t)mr * kc;
  }
}

// Columns [j0, j0 + nc) of op(B), k in [p0, p0 + kc), into panels of nr columns: dst[panel][p][j], zero past nc.
static void pack_b(const float *b, size_t ldb, int trans, size_t j0, size_t nc, size_t p0, size_t kc, int nr,
                   float *dst) {
  for (size_t jp = 0; jp < nc; jp += nr) {
    const size_t cols = nc - jp < (size_t)nr ? nc - jp : (size_t)nr;
    if (!trans) {
      // B row-major k x n: for each k the nr columns are contiguous.
      for (size_t p = 0; p < kc; p++) {
        const float *src = b + (p0 + p) * ldb + j0 + jp;
        float *d = dst + p * nr;
        memcpy(d, src, cols * sizeof(float));
        for (size_t j = cols; j < (size_t)nr; j++) d[j] = 0;
      }
    } else {
      // B stored n x k: column j of op(B) is row j, contiguous in k.
      for (size_t j = 0; j < cols; j++) {
        const float *src = b + (j0 + jp + j) * ldb + p0;
        for (size_t p = 0; p < kc; p++) dst[p * nr + j] = src[p];
      }
      for (size_t j = cols; j < (size_t)nr; j++) {
        for (size_t p = 0; p < kc; p++) dst[p * nr + j] = 0;
      }
    }
    dst += (size_t)nr * kc;
  }
}

// ---- The blocked product over a range of columns ----

typedef struct {
  const float *a, *b;
  float *c;
  size_t m, n, k, lda, ldb, ldc;
  int trans_a, trans_b;
  size_t j_begin, j_end;  // columns of C this worker computes
  size_t batch, stride_a, stride_b, stride_c;
  int status;
} job;

static void product(const job *w, const float *a, const float *b, float *c, float *pa, float *pb) {
  const kernel_info kern = chosen;
  const int mr = kern.mr, nr = kern.nr;
  const size_t m = w->m, k = w->k, ldc = w->ldc;
  const size_t blocks = (k + KC_MAX - 1) / KC_MAX;
  // Equal K blocks, so no block is a sliver.
  const size_t kc_even = blocks ? (k + blocks - 1) / blocks : 0;
  float tile[MR_MAX * NR_MAX];
  if (k == 0) {
    for (size_t i = 0; i < m; i++) memset(c + i * ldc + w->j_begin, 0, (w->j_end - w->j_begin) * sizeof(float));
    return;
  }
  for (size_t p0 = 0; p0 < k; p0 += kc_even) {
    const size_t kc = k - p0 < kc_even ? k - p0 : kc_even;
    const int accumulate = p0 > 0;
    // Untransposed A is read in place where the kernel can; only a last partial panel is packed then.
    const int in_place = kern.rows != NULL && !w->trans_a;
    const size_t full = in_place ? m / mr * mr : 0;
    pack_a(a, w->lda, w->trans_a, full, m - full, p0, kc, mr, pa + full * kc);
    for (size_t j0 = w->j_begin; j0 < w->j_end; j0 += NB) {
      const size_t nc = w->j_end - j0 < NB ? w->j_end - j0 : NB;
      pack_b(b, w->ldb, w->trans_b, j0, nc, p0, kc, nr, pb);
      for (size_t i = 0; i < m; i += mr) {
        const float *ap = pa + (i / mr) * mr * kc;
        const size_t rows = m - i < (size_t)mr ? m - i : (size_t)mr;
        for (size_t j = 0; j < nc; j += nr) {
          const float *bp = pb + (j / nr) * nr * kc;
          float *cij = c + i * ldc + j0 + j;
          const size_t cols = nc - j < (size_t)nr ? nc - j : (size_t)nr;
          const float *a_rows = i < full ? a + i * w->lda + p0 : NULL;
          if (rows == (size_t)mr && cols == (size_t)nr) {
            if (i < full) kern.rows(kc, a_rows, w->lda, bp, cij, ldc, accumulate);
            else kern.kernel(kc, ap, bp, cij, ldc, accumulate);
            continue;
          }
          // An edge: the full tile into `tile`, then its valid part into C.
          if (i < full) kern.rows(kc, a_rows, w->lda, bp, tile, nr, 0);
          else kern.kernel(kc, ap, bp, tile, nr, 0);
          for (size_t r = 0; r < rows; r++) {
            for (size_t q = 0; q < cols; q++) {
              cij[r * ldc + q] = accumulate ? cij[r * ldc + q] + tile[r * nr + q] : tile[r * nr + q];
            }
          }
        }
      }
    }
  }
}

static void *run_job(void *arg) {
  job *w = arg;
  const int mr = chosen.mr;
  const size_t kc = w->k < KC_MAX ? w->k : KC_MAX;
  const size_t m_padded = (w->m + mr - 1) / mr * mr;
  float *pa = aligned_alloc(64, ((m_padded * kc + 16) * sizeof(float) + 63) / 64 * 64);
  float *pb = aligned_alloc(64, ((NB * kc + 16) * sizeof(float) + 63) / 64 * 64);
  if (!pa || !pb) {
    free(pa);
    free(pb);
    w->status = 1;
    return NULL;
  }
  for (size_t i = 0; i < w->batch; i++) {
    product(w, w->a + i * w->stride_a, w->b + i * w->stride_b, w->c + i * w->stride_c, pa, pb);
  }
  free(pa);
  free(pb);
  w->status = 0;
  return NULL;
}

int sgemm(const float *a, const float *b, float *c, size_t batch, size_t m, size_t n, size_t k, int trans_a,
          int trans_b, size_t stride_a, size_t stride_b, size_t stride_c, int threads) {
  select_kernel();
  if (m == 0 || n == 0 || batch == 0) return 0;
  const size_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  const int nr = chosen.nr;
  // Threads split the columns in NR-wide pieces; a second thread pays only for products big enough to cover its
  // start (~50 us idle, several times that on a loaded machine) many times over: 264x256x64 (9 MFLOP) ran at 19
  // GFLOP/s on two threads against ~190 on one.
  size_t workers = threads < 1 ? 1 : (size_t)threads;
  const double flops = 2.0 * (double)batch * (double)m * (double)n * (double)k;
  if (flops < 3.2e7) workers = 1;
  const size_t panels = (n + nr - 1) / nr;
  if (workers > panels) workers = panels;
  if (workers > 16) workers = 16;
  job jobs[16];
  pthread_t ids[16];
  int started[16] = {0};
  for (size_t t = 0; t < workers; t++) {
    const size_t p0 = panels * t / workers, p1 = panels * (t + 1) / workers;
    jobs[t] = (job){a, b, c, m, n, k, lda, ldb, n, trans_a, trans_b, p0 * nr, p1 * nr < n ? p1 * nr : n,
                    batch, stride_a, stride_b, stride_c, 1};
  }
  for (size_t t = 1; t < workers; t++) started[t] = pthread_create(&ids[t], NULL, run_job, &jobs[t]) == 0;
  run_job(&jobs[0]);
  int bad = jobs[0].status;
  for (size_t t = 1; t < workers; t++) {
    if (started[t]) {
      pthread_join(ids[t], NULL);
    } else {
      run_job(&jobs[t]);  // no thread: do its share here
    }
    bad |= jobs[t].status;
  }
  return bad;
}
