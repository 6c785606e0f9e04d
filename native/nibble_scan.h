#ifndef VATT_NIBBLE_SCAN_H
#define VATT_NIBBLE_SCAN_H
#include <stddef.h>
#include <stdint.h>

// The best k rows by the integer score sum_i query[i] * code_i(row), over `rows` rows of 4-bit codes.
//
// Layout: dimensions in chunks of 8 (`chunks` of them, the last padded with zero codes), rows in groups of 16 (the
// last padded). Group g's chunk c is 64 bytes at (g * chunks + c) * 64: bytes 4 i .. 4 i + 3 belong to row 16 g + i,
// byte t holding dimension 8 c + t in its low nibble and 8 c + 4 + t in its high one. `query` has 8 * chunks signed
// bytes in dimension order. Rows whose `alive` byte is 0 are passed over (alive may be NULL). Writes up to k (row,
// score) pairs to out_rows / out_scores, best first, ties to the lower row; returns how many.
size_t nibble_scan_top(const uint8_t *codes, size_t rows, size_t chunks, const int8_t *query, const uint8_t *alive,
                       size_t k, int32_t *out_rows, int32_t *out_scores);

// Which kernel nibble_scan_top runs here: "avx512-vnni", "avx2" or "scalar".
const char *nibble_scan_kernel(void);

// Makes nibble_scan_top run the named kernel from now on (for tests: each against the others); 0 when this CPU
// lacks it or the name is unknown.
int nibble_scan_use(const char *name);
#endif
