// The first stage of the embedding index's quantized search (sinks/quantized-scan.ts): every stored vector as 4-bit
// codes (128 bytes for 256 dimensions), scored against an 8-bit query in one pass, the best k kept in a heap. A
// million rows is 128 MB read once, half the bytes of an 8-bit scan and an eighth of float32's. The codes of 16 rows
// are interleaved so that each 32-bit lane of a vector register sums one row: a first layout (a row's bytes
// together, one sum across the register per row) spent ~35 cycles a row on that sum and ran compute-bound at 11 ms
// a million rows. The candidates are then rescored exactly in float32 by the caller.
//
// AVX-512 VNNI (vpdpbusd: unsigned code bytes times signed query bytes, four products summed into each 32-bit lane)
// where the CPU has it, AVX2 (vpmaddubsw then vpmaddwd: the pair sums fit 16 bits, 2 * 15 * 128 < 32768) next, and
// plain C last; picked once, at the first call.
#include "nibble_scan.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

// Scores of `groups` groups of 16 rows into out[16 * groups] (the layout in nibble_scan.h).
typedef void (*score_fn)(const uint8_t *codes, size_t groups, size_t chunks, const int8_t *query, int32_t *out);

// One 32-bit lane a row: every instruction works on 16 rows at once and no sum across lanes is needed.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void score_vnni(const uint8_t *codes, size_t groups,
                                                                               size_t chunks, const int8_t *query,
                                                                               int32_t *out) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (size_t g = 0; g < groups; g++) {
    const uint8_t *group = codes + g * chunks * 64;
    __m512i acc = _mm512_setzero_si512();
    for (size_t c = 0; c < chunks; c++) {
      int32_t qlo, qhi;
      memcpy(&qlo, query + 8 * c, 4);
      memcpy(&qhi, query + 8 * c + 4, 4);
      const __m512i x = _mm512_loadu_si512(group + 64 * c);
      acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(x, low), _mm512_set1_epi32(qlo));
      acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, 4), low), _mm512_set1_epi32(qhi));
    }
    _mm512_storeu_si512(out + 16 * g, acc);
  }
}

__attribute__((target("avx2"))) static void score_avx2(const uint8_t *codes, size_t groups, size_t chunks,
                                                       const int8_t *query, int32_t *out) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t g = 0; g < groups; g++) {
    const uint8_t *group = codes + g * chunks * 64;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (size_t c = 0; c < chunks; c++) {
      int32_t qlo, qhi;
      memcpy(&qlo, query + 8 * c, 4);
      memcpy(&qhi, query + 8 * c + 4, 4);
      const __m256i ql = _mm256_set1_epi32(qlo), qh = _mm256_set1_epi32(qhi);
      const __m256i x0 = _mm256_loadu_si256((const __m256i *)(group + 64 * c));
      const __m256i x1 = _mm256_loadu_si256((const __m256i *)(group + 64 * c + 32));
      const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(x0, low), ql),
                                          _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x0, 4), low), qh));
      const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(x1, low), ql),
                                          _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x1, 4), low), qh));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
    }
    _mm256_storeu_si256((__m256i *)(out + 16 * g), acc0);
    _mm256_storeu_si256((__m256i *)(out + 16 * g + 8), acc1);
  }
}

static void score_scalar(const uint8_t *codes, size_t groups, size_t chunks, const int8_t *query, int32_t *out) {
  for (size_t g = 0; g < groups; g++) {
    for (size_t i = 0; i < 16; i++) {
      int32_t sum = 0;
      for (size_t c = 0; c < chunks; c++) {
        const uint8_t *x = codes + (g * chunks + c) * 64 + 4 * i;
        for (size_t t = 0; t < 4; t++) sum += (x[t] & 0x0F) * query[8 * c + t] + (x[t] >> 4) * query[8 * c + 4 + t];
      }
      out[16 * g + i] = sum;
    }
  }
}

static score_fn chosen;
static const char *chosen_name;

static void choose(void) {
  if (chosen) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    chosen = score_vnni, chosen_name = "avx512-vnni";
  } else if (__builtin_cpu_supports("avx2")) {
    chosen = score_avx2, chosen_name = "avx2";
  } else {
    chosen = score_scalar, chosen_name = "scalar";
  }
}

const char *nibble_scan_kernel(void) {
  choose();
  return chosen_name;
}

// A min-heap of the best k so far: its root is the worst kept, the one a better row replaces. "Worse" is a lower
// score, or the same score at a higher row (rows arrive in increasing order, so an equal score never displaces).
typedef struct {
  int32_t score, row;
} entry;

static int worse(entry a, entry b) { return a.score < b.score || (a.score == b.score && a.row > b.row); }

static void sift_down(entry *heap, size_t n, size_t i) {
  for (;;) {
    size_t w = i, l = 2 * i + 1, r = l + 1;
    if (l < n && worse(heap[l], heap[w])) w = l;
    if (r < n && worse(heap[r], heap[w])) w = r;
    if (w == i) return;
    entry t = heap[i];
    heap[i] = heap[w], heap[w] = t, i = w;
  }
}

static void sift_up(entry *heap, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!worse(heap[i], heap[p])) return;
    entry t = heap[i];
    heap[i] = heap[p], heap[p] = t, i = p;
  }
}

enum { CHUNK = 4096 };

int nibble_scan_use(const char *name) {
  choose();
  __builtin_cpu_init();
  if (strcmp(name, "avx512-vnni") == 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    chosen = score_vnni, chosen_name = "avx512-vnni";
  } else if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
    chosen = score_avx2, chosen_name = "avx2";
  } else if (strcmp(name, "scalar") == 0) {
    chosen = score_scalar, chosen_name = "scalar";
  } else {
    return 0;
  }
  return 1;
}

size_t nibble_scan_top(const uint8_t *codes, size_t rows, size_t chunks, const int8_t *query, const uint8_t *alive,
                       size_t k, int32_t *out_rows, int32_t *out_scores) {
  choose();
  if (k == 0) return 0;
  entry *heap = malloc(k * sizeof(entry));
  if (!heap) return 0;
  // Scores CHUNK rows at a time (16 KB, stays in L1; CHUNK is a multiple of 16), then offered to the heap: almost every row loses to the root at
  // once, so the heap costs next to nothing beside the scan.
  int32_t scores[CHUNK];
  size_t n = 0;
  for (size_t start = 0; start < rows; start += CHUNK) {
    const size_t count = rows - start < CHUNK ? rows - start : CHUNK;
    chosen(codes + start * chunks * 4, (count + 15) / 16, chunks, query, scores);
    for (size_t i = 0; i < count; i++) {
      const entry e = {scores[i], (int32_t)(start + i)};
      if (alive && !alive[start + i]) continue;
      if (n < k) {
        heap[n] = e;
        sift_up(heap, n++);
      } else if (worse(heap[0], e)) {
        heap[0] = e;
        sift_down(heap, n, 0);
      }
    }
  }
  // Best first: pop the worst to the back.
  for (size_t m = n; m > 0; m--) {
    out_rows[m - 1] = heap[0].row;
    out_scores[m - 1] = heap[0].score;
    heap[0] = heap[m - 1];
    sift_down(heap, m - 1, 0);
  }
  free(heap);
  return n;
}
