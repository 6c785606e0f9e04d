#ifndef VATT_NORMS_H
#define VATT_NORMS_H
#include <stddef.h>

// x, y, dy, dx: rows x d, row-major; gamma, beta, scale, dgamma, dscale: d.
void layer_norm(const float *x, const float *gamma, const float *beta, float *y, size_t rows, int d, float eps);
void layer_norm_grad_x(const float *x, const float *gamma, const float *dy, float *dx, size_t rows, int d,
                       float eps);
void layer_norm_grad_gamma(const float *x, const float *dy, float *dgamma, size_t rows, int d, float eps);
void rms_norm(const float *x, const float *scale, float *y, size_t rows, int d, float eps);
void rms_norm_grad_x(const float *x, const float *scale, const float *dy, float *dx, size_t rows, int d, float eps);
void rms_norm_grad_scale(const float *x, const float *dy, float *dscale, size_t rows, int d, float eps);
#endif
