// The audio operators' Gaussian noise (operators/audio.ts `addGaussianNoise`) in C: the same sfc32 generator and
// the same ziggurat (tables passed in from audio.ts), so it draws the same normals as the JavaScript reference.
#include <math.h>
#include <stdint.h>

#include "audio_noise.h"
#include "sfc32.h"

// Uniform in (0, 1).
static inline double open01(struct sfc32 *s) { return ((double)sfc32_next(s) + 0.5) / 4294967296.0; }

static double normal_tail(struct sfc32 *s, int32_t m, int i, const struct ziggurat *z) {
  for (;;) {
    if (i == 0) {
      double x, y;
      do {
        x = -log(open01(s)) / z->r;
        y = -log(open01(s));
      } while (y + y < x * x);
      return m > 0 ? z->r + x : -z->r - x;
    }
    double x = m * z->w[i];
    if (z->f[i] + open01(s) * (z->f[i - 1] - z->f[i]) < exp(-0.5 * x * x)) return x;
    int32_t u = (int32_t)sfc32_next(s);
    i = u & 127;
    m = u >> 7;
    if ((m < 0 ? -m : m) < z->k[i]) return m * z->w[i];
  }
}

void add_gaussian_noise(const float *audio, float *out, size_t n, double sigma, const uint32_t words[4],
                        const struct ziggurat *z) {
  struct sfc32 s = sfc32_from_words(words);
  for (size_t i = 0; i < n; i++) {
    int32_t u = (int32_t)sfc32_next(&s);
    int layer = u & 127;
    int32_t m = u >> 7;
    double normal = (m < 0 ? -m : m) < z->k[layer] ? m * z->w[layer] : normal_tail(&s, m, layer, z);
    double v = audio[i] + sigma * normal;
    out[i] = (float)(v > 1 ? 1 : v < -1 ? -1 : v);
  }
}
