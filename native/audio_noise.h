#ifndef VATT_AUDIO_NOISE_H
#define VATT_AUDIO_NOISE_H
#include <stddef.h>
#include <stdint.h>

// Ziggurat tables (128 layers) as operators/audio.ts builds them.
struct ziggurat {
  const int32_t *k;
  const double *w, *f;
  double r;
};

// out[i] = clip(audio[i] + sigma * N(0, 1), -1, 1), the normals drawn from sfc32 seeded with `words` (12 warm-up
// draws) by the ziggurat `z`.
void add_gaussian_noise(const float *audio, float *out, size_t n, double sigma, const uint32_t words[4],
                        const struct ziggurat *z);

#endif
