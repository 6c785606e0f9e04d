#ifndef VATT_ROWS_H
#define VATT_ROWS_H
#include <stddef.h>

// out[j] = sum over i < outer of x[i * inner + j] (x is outer * inner floats, out inner).
void sum_leading(const float *x, float *out, size_t outer, size_t inner);

// x[i * inner + j] += row[j] for i < outer (a dense layer's bias, added in place).
void add_rows(float *x, const float *row, size_t outer, size_t inner);

// out[i] += x[i] for i < n (residual sums and gradient accumulation of the fused encoder block).
void add_into(float *out, const float *x, size_t n);
#endif
