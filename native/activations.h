#ifndef VATT_ACTIVATIONS_H
#define VATT_ACTIVATIONS_H
#include <stddef.h>

// y = 0.5 x (1 + erf(x / sqrt 2)).
void gelu_forward(const float *x, float *y, size_t n);
// dx = dy * d gelu / dx at x.
void gelu_backward(const float *x, const float *dy, float *dx, size_t n);
#endif
