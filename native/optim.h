#ifndef VATT_OPTIM_H
#define VATT_OPTIM_H
#include <stddef.h>
#include <stdint.h>

// Sum of x * x over the non-NaN entries of g.
double sum_squares(const float *g, size_t n);

// Keras Adam in place: x = NaN ? 0 : g * factor; m = b1 m + (1 - b1) x; v = b2 v + (1 - b2) x^2;
// p -= m / (sqrt(v) + epsilon) * lr_t (lr_t already bias-corrected). Returns sum_squares(g).
double adam_update(float *p, float *m, float *v, const float *g, size_t n, float factor, double beta1, double beta2,
                 float epsilon, float lr_t);

// adam_update for a gradient that is zero outside `count` rows of `width` (rows ascending, distinct, in range):
// the same results without reading g elsewhere (a word table's gradient touches a few hundred of 65,536 rows).
double adam_update_rows(float *p, float *m, float *v, const float *g, size_t n, size_t width, const int32_t *rows,
                        size_t count, float factor, double beta1, double beta2, float epsilon, float lr_t);
#endif
