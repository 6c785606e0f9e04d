// The training video kernel of operators/crop.ts `cropResizeColour` in C, for the compiler to vectorise: crop +
// bilinear resize (half-pixel centres, as tf.image.resize) + flip, then colour (brightness, saturation, contrast,
// hue, clip) and `* scale + shift`. The JavaScript kernel in crop.ts is the reference this one is tested against
// (test/operators/crop-native.test.ts). Built by `npm run build` (node-gyp); operators/crop-native.ts loads it.
//
// Per output frame, in three planes (R, G, B) so every colour step is a straight loop over floats:
//  1. each output row: a vertical lerp of its two source rows over the crop's span, then a horizontal gather +
//     lerp per output column (the flip is in the column table), to [0, 1]; with colour, brightness and saturation
//     there too, and the channel sums contrast needs;
//  2. each output row again: contrast, hue, clip, scale, interleaved back to RGB.
// The branches are written as selects so the loops vectorise; `target_clones` builds AVX-512, AVX2 and baseline
// versions and picks one when the library loads.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "crop_colour.h"

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

static inline float max3(float a, float b, float c) {
  float m = a > b ? a : b;
  return m > c ? m : c;
}

static inline float min3(float a, float b, float c) {
  float m = a < b ? a : b;
  return m < c ? m : c;
}

// One channel of HSV -> RGB for hue h in [0, 6): max - range * clamp(min(k, 4 - k), 0, 1), k = (n + h) mod 6.
static inline float hue_channel(float n, float h, float vmax, float range) {
  float k = n + h;
  k = k >= 6.0f ? k - 6.0f : k;
  float f = k < 4.0f - k ? k : 4.0f - k;
  f = f < 0.0f ? 0.0f : f;
  f = f > 1.0f ? 1.0f : f;
  return vmax - range * f;
}

static inline float clip01(float v) {
  v = v < 0.0f ? 0.0f : v;
  return v > 1.0f ? 1.0f : v;
}

// Half-pixel-centred bilinear source positions for one axis: low index, high index (both relative to the crop's
// start) and weight of the high one.
static void axis_table(int length, int out_length, int *lo, int *hi, float *w) {
  double scale = (double)length / out_length;
  for (int o = 0; o < out_length; o++) {
    double s = (o + 0.5) * scale - 0.5;
    s = s < 0 ? 0 : s;
    s = s > length - 1 ? length - 1 : s;
    int i0 = (int)floor(s);
    lo[o] = i0;
    hi[o] = i0 + 1 < length ? i0 + 1 : length - 1;
    w[o] = (float)(s - i0);
  }
}

CLONES static void colour_row_first(float *restrict r, float *restrict g, float *restrict b, int n, float bright,
                                    float sat, double *sums) {
  float sr = 0, sg = 0, sb = 0;
  for (int o = 0; o < n; o++) {
    float rr = r[o] + bright, gg = g[o] + bright, bb = b[o] + bright;
    // Saturation (TF's HSV kernel): keep hue and value, s' = min(s * f, 1): c' = v - (v - c) * k with k = f, or
    // v / range where s * f would pass 1. A pixel with v <= 0 becomes (v, v, v).
    float v = max3(rr, gg, bb);
    float range = v - min3(rr, gg, bb);
    float k = sat * range <= v ? sat : v / range;
    rr = v <= 0.0f ? v : v - (v - rr) * k;
    gg = v <= 0.0f ? v : v - (v - gg) * k;
    bb = v <= 0.0f ? v : v - (v - bb) * k;
    r[o] = rr;
    g[o] = gg;
    b[o] = bb;
    sr += rr;
    sg += gg;
    sb += bb;
  }
  sums[0] += sr;
  sums[1] += sg;
  sums[2] += sb;
}

CLONES static void colour_row_second(const float *restrict r, const float *restrict g, const float *restrict b,
                                     float *restrict out, int n, float mr, float mg, float mb, float contrast,
                                     float dh, float scale, float shift) {
  for (int o = 0; o < n; o++) {
    float rr = (r[o] - mr) * contrast + mr;
    float gg = (g[o] - mg) * contrast + mg;
    float bb = (b[o] - mb) * contrast + mb;
    // Hue in sixths of a turn from the largest channel (ties: r, then g), rotated, back to RGB; grey stays.
    float vmax = max3(rr, gg, bb);
    float range = vmax - min3(rr, gg, bb);
    float inv = 1.0f / range;
    float h = vmax == rr ? (gg - bb) * inv : vmax == gg ? 2.0f + (bb - rr) * inv : 4.0f + (rr - gg) * inv;
    h += dh;
    h = h < 0.0f ? h + 6.0f : h;
    h = h >= 6.0f ? h - 6.0f : h;
    float nr = hue_channel(5.0f, h, vmax, range);
    float ng = hue_channel(3.0f, h, vmax, range);
    float nb = hue_channel(1.0f, h, vmax, range);
    rr = range > 0.0f ? nr : rr;
    gg = range > 0.0f ? ng : gg;
    bb = range > 0.0f ? nb : bb;
    out[3 * o] = clip01(rr) * scale + shift;
    out[3 * o + 1] = clip01(gg) * scale + shift;
    out[3 * o + 2] = clip01(bb) * scale + shift;
  }
}

CLONES static void plain_row(const float *restrict r, const float *restrict g, const float *restrict b,
                             float *restrict out, int n, float scale, float shift) {
  for (int o = 0; o < n; o++) {
    out[3 * o] = r[o] * scale + shift;
    out[3 * o + 1] = g[o] * scale + shift;
    out[3 * o + 2] = b[o] * scale + shift;
  }
}

CLONES static void vertical_lerp(const uint8_t *restrict top, const uint8_t *restrict bottom, float fy,
                                 float *restrict row, int n) {
  for (int i = 0; i < n; i++) row[i] = (float)top[i] + ((float)bottom[i] - (float)top[i]) * fy;
}

CLONES static void horizontal_lerp(const float *restrict row, const int *x0, const int *x1, const float *wx,
                            float *restrict r, float *restrict g, float *restrict b, int n) {
  const float inv = 1.0f / 255.0f;
  for (int o = 0; o < n; o++) {
    const float *p = row + x0[o];
    const float *q = row + x1[o];
    float f = wx[o];
    r[o] = (p[0] + (q[0] - p[0]) * f) * inv;
    g[o] = (p[1] + (q[1] - p[1]) * f) * inv;
    b[o] = (p[2] + (q[2] - p[2]) * f) * inv;
  }
}

// A crop that needs no resize (the box is the output size, e.g. when ffmpeg already cropped and scaled): each row
// straight from bytes to planes, mirrored for the flip. Same values as the lerps with weight 0.
CLONES static void convert_row(const uint8_t *restrict src, float *restrict r, float *restrict g, float *restrict b,
                               int n, int flip) {
  const float inv = 1.0f / 255.0f;
  if (flip) {
    for (int o = 0; o < n; o++) {
      const uint8_t *p = src + 3 * (size_t)(n - 1 - o);
      r[o] = p[0] * inv;
      g[o] = p[1] * inv;
      b[o] = p[2] * inv;
    }
  } else {
    for (int o = 0; o < n; o++) {
      r[o] = src[3 * o] * inv;
      g[o] = src[3 * o + 1] * inv;
      b[o] = src[3 * o + 2] * inv;
    }
  }
}

int crop_resize_colour(const uint8_t *frames, int num_frames, int height, int width, int box_x, int box_y,
                       int box_w, int box_h, int out_h, int out_w, int flip, const struct colour_factors *colour,
                       float scale, float shift, float *out) {
  (void)height;
  size_t plane = (size_t)out_h * out_w;
  int *ints = malloc(sizeof(int) * (2 * (size_t)out_h + 4 * (size_t)out_w));
  float *floats = malloc(sizeof(float) * ((size_t)out_h + 2 * (size_t)out_w + (size_t)box_w * 3 + 3 * plane));
  if (!ints || !floats) {
    free(ints);
    free(floats);
    return -1;
  }
  int *ylo = ints, *yhi = ylo + out_h, *xlo = yhi + out_h, *xhi = xlo + out_w, *x0 = xhi + out_w, *x1 = x0 + out_w;
  float *wy = floats, *wxs = wy + out_h, *wx = wxs + out_w, *vrow = wx + out_w;
  float *pr = vrow + (size_t)box_w * 3, *pg = pr + plane, *pb = pg + plane;
  axis_table(box_h, out_h, ylo, yhi, wy);
  axis_table(box_w, out_w, xlo, xhi, wxs);
  for (int o = 0; o < out_w; o++) {
    int s = flip ? out_w - 1 - o : o;
    x0[o] = 3 * xlo[s];
    x1[o] = 3 * xhi[s];
    wx[o] = wxs[s];
  }
  const int same_size = box_w == out_w && box_h == out_h;
  size_t row_bytes = (size_t)width * 3;
  size_t frame_bytes = (size_t)height * row_bytes;
  float dh = 0;
  if (colour) {
    dh = fmodf(colour->hue6, 6.0f);
    if (dh < 0) dh += 6.0f;
  }
  for (int t = 0; t < num_frames; t++) {
    const uint8_t *frame = frames + (size_t)t * frame_bytes + (size_t)box_x * 3;
    float *frame_out = out + (size_t)t * plane * 3;
    double sums[3] = {0, 0, 0};
    for (int oy = 0; oy < out_h; oy++) {
      size_t at = (size_t)oy * out_w;
      if (same_size) {
        convert_row(frame + (size_t)(box_y + oy) * row_bytes, pr + at, pg + at, pb + at, out_w, flip);
      } else {
        const uint8_t *top = frame + (size_t)(box_y + ylo[oy]) * row_bytes;
        const uint8_t *bottom = frame + (size_t)(box_y + yhi[oy]) * row_bytes;
        vertical_lerp(top, bottom, wy[oy], vrow, box_w * 3);
        horizontal_lerp(vrow, x0, x1, wx, pr + at, pg + at, pb + at, out_w);
      }
      if (colour) colour_row_first(pr + at, pg + at, pb + at, out_w, colour->brightness, colour->saturation, sums);
    }
    for (int oy = 0; oy < out_h; oy++) {
      size_t at = (size_t)oy * out_w;
      if (colour) {
        colour_row_second(pr + at, pg + at, pb + at, frame_out + at * 3, out_w, (float)(sums[0] / plane),
                          (float)(sums[1] / plane), (float)(sums[2] / plane), colour->contrast, dh, scale, shift);
      } else {
        plain_row(pr + at, pg + at, pb + at, frame_out + at * 3, out_w, scale, shift);
      }
    }
  }
  free(ints);
  free(floats);
  return 0;
}
