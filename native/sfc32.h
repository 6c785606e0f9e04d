#ifndef VATT_SFC32_H
#define VATT_SFC32_H
#include <stdint.h>

// core/random.ts's generator (sfc32), so native loops draw the streams the JavaScript references draw.
struct sfc32 {
  uint32_t a, b, c, d;
};

static inline uint32_t sfc32_next(struct sfc32 *s) {
  uint32_t t = s->a + s->b + s->d;
  s->d += 1;
  s->a = s->b ^ (s->b >> 9);
  s->b = s->c + (s->c << 3);
  s->c = ((s->c << 21) | (s->c >> 11)) + t;
  return t;
}

// Seeded from four words and warmed up with 12 draws, as randomFromWords does.
static inline struct sfc32 sfc32_from_words(const uint32_t words[4]) {
  struct sfc32 s = {words[0], words[1], words[2], words[3]};
  for (int i = 0; i < 12; i++) sfc32_next(&s);
  return s;
}
#endif
