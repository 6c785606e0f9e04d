#ifndef VATT_OPTIM_H
#define VATT_OPTIM_H
#include <stddef.h>

// Sum of x * x over the non-NaN entries of g.
double sum_squares(const float *g, size_t n);

// Keras Adam in place: x = NaN ? 0 : g * factor; m = b1 m + (1 - b1) x; v = b2 v + (1 - b2) x^2;
// p -= m / (sqrt(v) + epsilon) * lr_t (lr_t already bias-corrected). Returns sum_squares(g).
double adam_update(float *p, float *m, float *v, const float *g, size_t n, float factor, double beta1, double beta2,
                 float epsilon, float lr_t);
#endif
