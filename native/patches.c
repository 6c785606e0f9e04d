// The video tokenizer's patch cut (model/tokens.ts `videoPatches`): one row of pw * 3 values per (token, dt, dh),
// copied straight into the input tensor's memory (in JavaScript each row was a subarray object and a set call).
#include "patches.h"

#include <string.h>

void video_patches(const float *video, float *out, size_t batch, size_t frames, size_t height, size_t width,
                   size_t pt, size_t ph, size_t pw, const int32_t *t, const int32_t *h, const int32_t *w, size_t n) {
  const size_t row = pw * 3;
  for (size_t b = 0; b < batch; b++) {
    for (size_t k = 0; k < n; k++) {
      for (size_t dt = 0; dt < pt; dt++) {
        const size_t frame = b * frames + (size_t)t[k] * pt + dt;
        for (size_t dh = 0; dh < ph; dh++) {
          const size_t y = (size_t)h[k] * ph + dh;
          memcpy(out, video + ((frame * height + y) * width + (size_t)w[k] * pw) * 3, row * sizeof(float));
          out += row;
        }
      }
    }
  }
}
