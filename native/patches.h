#ifndef VATT_PATCHES_H
#define VATT_PATCHES_H
#include <stddef.h>
#include <stdint.h>

// Voxels of a [batch, frames, height, width, 3] clip for the n tokens at (t[k], h[k], w[k]) on the patch grid:
// out is [batch, n, pt * ph * pw * 3], each voxel ordered (dt, dh, dw, channel). Indices are checked by the caller.
void video_patches(const float *video, float *out, size_t batch, size_t frames, size_t height, size_t width,
                   size_t pt, size_t ph, size_t pw, const int32_t *t, const int32_t *h, const int32_t *w, size_t n);
#endif
