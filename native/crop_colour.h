#ifndef VATT_CROP_COLOUR_H
#define VATT_CROP_COLOUR_H
#include <stdint.h>

// Colour factors as operators/color.ts draws them; saturation already clamped at 0, hue6 = hue * 6 (sixths).
struct colour_factors {
  float brightness, saturation, contrast, hue6;
};

// frames: num_frames x height x width x 3 uint8; out: num_frames x out_h x out_w x 3 float. The box must fit in the
// frame (the caller checks). colour may be NULL (crop + resize + flip + scale only). Returns 0, or -1 without memory.
int crop_resize_colour(const uint8_t *frames, int num_frames, int height, int width, int box_x, int box_y,
                       int box_w, int box_h, int out_h, int out_w, int flip, const struct colour_factors *colour,
                       float scale, float shift, float *out);
#endif
