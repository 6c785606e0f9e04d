// Node-API entry points of the native kernels (loaded by native/kernels.ts). Arguments are checked here so
// that a wrong call throws a TypeError or RangeError instead of reading or writing out of bounds.
#include <node_api.h>
#include <stddef.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "activations.h"
#include "attention.h"
#include "audio_noise.h"
#include "dropout.h"
#include "optim.h"
#include "ort_gemm.h"
#include "crop_colour.h"
#include "node_api_helpers.h"
#include "nibble_scan.h"
#include "norms.h"
#include "patches.h"
#include "rows.h"
#include "sgemm.h"

#define CHECK(call)                                                                                          \
  if ((call) != napi_ok) {                                                                                   \
    napi_throw_error(env, NULL, "vatt native kernel: Node-API call failed: " #call);                         \
    return NULL;                                                                                             \
  }

// cropResizeColour(frames: Uint8Array, numFrames, height, width, boxX, boxY, boxW, boxH, outH, outW, flip,
//                  colour: Float32Array [brightness, saturation, contrast, hue6] | null, scale, shift,
//                  out: Float32Array): undefined
static napi_value CropResizeColour(napi_env env, napi_callback_info info) {
  size_t argc = 15;
  napi_value argv[15];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 15) {
    napi_throw_type_error(env, NULL, "cropResizeColour: expected 15 arguments");
    return NULL;
  }
  void *frames, *out;
  size_t frames_len, out_len;
  if (!typed_array(env, argv[0], napi_uint8_array, &frames, &frames_len) ||
      !typed_array(env, argv[14], napi_float32_array, &out, &out_len)) {
    napi_throw_type_error(env, NULL, "cropResizeColour: frames must be a Uint8Array and out a Float32Array");
    return NULL;
  }
  int n[9];
  for (int i = 0; i < 9; i++) CHECK(napi_get_value_int32(env, argv[1 + i], &n[i]));
  bool flip;
  CHECK(napi_get_value_bool(env, argv[10], &flip));
  double scale, shift;
  CHECK(napi_get_value_double(env, argv[12], &scale));
  CHECK(napi_get_value_double(env, argv[13], &shift));
  struct colour_factors factors, *colour = NULL;
  napi_valuetype kind;
  CHECK(napi_typeof(env, argv[11], &kind));
  if (kind != napi_null && kind != napi_undefined) {
    void *values;
    size_t count;
    if (!typed_array(env, argv[11], napi_float32_array, &values, &count) || count != 4) {
      napi_throw_type_error(env, NULL, "cropResizeColour: colour must be a Float32Array of 4 or null");
      return NULL;
    }
    const float *v = values;
    factors = (struct colour_factors){v[0], v[1], v[2], v[3]};
    colour = &factors;
  }
  int num_frames = n[0], height = n[1], width = n[2], bx = n[3], by = n[4], bw = n[5], bh = n[6], oh = n[7],
      ow = n[8];
  // Differences, not sums, so huge values cannot wrap around the checks.
  if (num_frames < 0 || height < 1 || width < 1 || oh < 1 || ow < 1 || bx < 0 || by < 0 || bw < 1 || bh < 1 ||
      bx > width - bw || by > height - bh || frames_len < (size_t)num_frames * height * width * 3 ||
      out_len < (size_t)num_frames * oh * ow * 3) {
    napi_throw_range_error(env, NULL, "cropResizeColour: sizes, box and buffers do not agree");
    return NULL;
  }
  if (crop_resize_colour(frames, num_frames, height, width, bx, by, bw, bh, oh, ow, flip, colour, (float)scale,
                         (float)shift, out) != 0) {
    napi_throw_error(env, NULL, "cropResizeColour: out of memory");
  }
  return NULL;
}

// addGaussianNoise(audio: Float32Array, out: Float32Array, sigma, words: Uint32Array(4), zigK: Int32Array(128),
//                  zigW: Float64Array(128), zigF: Float64Array(128), zigR): undefined
static napi_value AddGaussianNoise(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *audio, *out, *words, *k, *w, *f;
  size_t audio_len, out_len, words_len, k_len, w_len, f_len;
  if (argc != 8 || !typed_array(env, argv[0], napi_float32_array, &audio, &audio_len) ||
      !typed_array(env, argv[1], napi_float32_array, &out, &out_len) ||
      !typed_array(env, argv[3], napi_uint32_array, &words, &words_len) ||
      !typed_array(env, argv[4], napi_int32_array, &k, &k_len) ||
      !typed_array(env, argv[5], napi_float64_array, &w, &w_len) ||
      !typed_array(env, argv[6], napi_float64_array, &f, &f_len)) {
    napi_throw_type_error(env, NULL, "addGaussianNoise: expected (Float32Array, Float32Array, number, Uint32Array, "
                                     "Int32Array, Float64Array, Float64Array, number)");
    return NULL;
  }
  if (out_len < audio_len || words_len != 4 || k_len != 128 || w_len != 128 || f_len != 128) {
    napi_throw_range_error(env, NULL, "addGaussianNoise: buffer sizes do not agree");
    return NULL;
  }
  double sigma, r;
  CHECK(napi_get_value_double(env, argv[2], &sigma));
  CHECK(napi_get_value_double(env, argv[7], &r));
  struct ziggurat z = {k, w, f, r};
  add_gaussian_noise(audio, out, audio_len, sigma, words, &z);
  return NULL;
}

// A dropout rate in [0, 1) and its four seed words (a Uint32Array); 0 when they are not that.
static int dropout_args(napi_env env, napi_value rate_value, napi_value words_value, double *rate, void **words) {
  size_t count;
  return napi_get_value_double(env, rate_value, rate) == napi_ok && *rate >= 0 && *rate < 1 &&
         typed_array(env, words_value, napi_uint32_array, words, &count) && count == 4;
}

// dropoutMask(out: Float32Array, rate, words: Uint32Array(4)): undefined
static napi_value DropoutMask(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *out, *words;
  size_t n;
  double rate;
  if (argc != 3 || !typed_array(env, argv[0], napi_float32_array, &out, &n) ||
      !dropout_args(env, argv[1], argv[2], &rate, &words)) {
    napi_throw_type_error(env, NULL, "dropoutMask: expected (Float32Array, rate in [0, 1), Uint32Array(4))");
    return NULL;
  }
  dropout_mask(out, n, rate, words);
  return NULL;
}

// dropoutApply(x: Float32Array, out: Float32Array (same length), rate, words: Uint32Array(4)): undefined
// out = x * dropoutMask(x.length, rate, words), without making the mask.
static napi_value DropoutApply(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *x, *out, *words;
  size_t nx, nout;
  double rate;
  if (argc != 4 || !typed_array(env, argv[0], napi_float32_array, &x, &nx) ||
      !typed_array(env, argv[1], napi_float32_array, &out, &nout) || nx != nout ||
      !dropout_args(env, argv[2], argv[3], &rate, &words)) {
    napi_throw_type_error(env, NULL,
                          "dropoutApply: expected (x, out: Float32Arrays of one length, rate in [0, 1), Uint32Array(4))");
    return NULL;
  }
  dropout_apply(x, out, nx, rate, words);
  return NULL;
}

// A Float32Array argument of exactly `length` elements, or null where `optional`; 0 (after throwing) otherwise.
static int float_arg(napi_env env, napi_value value, size_t length, int optional, float **data, const char *what) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return 0;
  if (optional && type == napi_null) {
    *data = NULL;
    return 1;
  }
  void *p;
  size_t n;
  if (!typed_array(env, value, napi_float32_array, &p, &n) || n != length) {
    char message[160];
    snprintf(message, sizeof message, "attention: %s must be a Float32Array of %zu elements%s", what, length,
             optional ? " or null" : "");
    napi_throw_range_error(env, NULL, message);
    return 0;
  }
  *data = p;
  return 1;
}

// attention(q, k, v, bias | null, dout | null, out | dq, dk | null, dv | null, dscores | null,
//           batch, tokens, heads, headDim, scale, rate, words: Uint32Array(4), threads, probs | null): undefined
// Without dout: the forward pass into out. With dout: the backward pass into dq, dk, dv (and dscores unless null).
// q, k, v, dout, out, dq, dk, dv: batch * tokens * heads * headDim; bias, dscores, probs: batch * heads * tokens^2.
// probs: the forward pass keeps the softmax probabilities there and the backward pass reads them back.
static napi_value Attention(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value argv[18];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t size[4], threads;
  double scale, rate;
  void *words;
  size_t count;
  if (argc != 18 || napi_get_value_int32(env, argv[16], &threads) != napi_ok || threads < 1) {
    napi_throw_type_error(env, NULL, "attention: expected 18 arguments, the 17th a thread count >= 1");
    return NULL;
  }
  for (int i = 0; i < 4; i++) {
    if (napi_get_value_int32(env, argv[9 + i], &size[i]) != napi_ok || size[i] < 1) {
      napi_throw_type_error(env, NULL, "attention: batch, tokens, heads and headDim must be positive integers");
      return NULL;
    }
  }
  if (napi_get_value_double(env, argv[13], &scale) != napi_ok ||
      napi_get_value_double(env, argv[14], &rate) != napi_ok || !(rate >= 0 && rate < 1) ||
      !typed_array(env, argv[15], napi_uint32_array, &words, &count) || count != 4) {
    napi_throw_type_error(env, NULL, "attention: expected scale, rate in [0, 1) and Uint32Array(4) words");
    return NULL;
  }
  size_t batch = (size_t)size[0], tokens = (size_t)size[1], heads = (size_t)size[2], head_dim = (size_t)size[3];
  // Sizes whose products wrap would pass the length checks below with small arrays: refuse them. The scratch rows
  // (attention.c) hold (2 head_dim + 16) x tokens rounded up to 16 floats.
  size_t rows, scores, scratch;
  if (__builtin_mul_overflow(batch * tokens, heads * head_dim, &rows) ||
      __builtin_mul_overflow(batch * heads, tokens * tokens, &scores) ||
      __builtin_mul_overflow(2 * head_dim + 16, tokens + 16, &scratch) || scratch > ((size_t)1 << 40)) {
    napi_throw_range_error(env, NULL, "attention: batch, tokens, heads and headDim are too large");
    return NULL;
  }
  float *q, *k, *v, *bias, *dout, *out, *dk, *dv, *dscores, *probs;
  if (!float_arg(env, argv[17], scores, 1, &probs, "probs") || !float_arg(env, argv[0], rows, 0, &q, "q") ||
      !float_arg(env, argv[1], rows, 0, &k, "k") ||
      !float_arg(env, argv[2], rows, 0, &v, "v") || !float_arg(env, argv[3], scores, 1, &bias, "bias") ||
      !float_arg(env, argv[4], rows, 1, &dout, "dout") || !float_arg(env, argv[5], rows, 0, &out, "out") ||
      !float_arg(env, argv[6], rows, !dout, &dk, "dk") || !float_arg(env, argv[7], rows, !dout, &dv, "dv") ||
      !float_arg(env, argv[8], scores, 1, &dscores, "dscores")) {
    return NULL;
  }
  int status = dout ? attention_backward(q, k, v, bias, probs, dout, out, dk, dv, dscores, batch, tokens, heads,
                                         head_dim, (float)scale, rate, words, threads)
                    : attention_forward(q, k, v, bias, out, probs, batch, tokens, heads, head_dim, (float)scale, rate,
                                        words, threads);
  if (status != 0) napi_throw_error(env, NULL, "attention: out of memory for scratch rows");
  return NULL;
}

// gelu(x: Float32Array, y: Float32Array): undefined; geluGrad(x, dy, dx: Float32Array): undefined (same lengths)
static napi_value Gelu(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *x, *y;
  size_t nx, ny;
  if (argc != 2 || !typed_array(env, argv[0], napi_float32_array, &x, &nx) ||
      !typed_array(env, argv[1], napi_float32_array, &y, &ny) || nx != ny) {
    napi_throw_type_error(env, NULL, "gelu: expected two Float32Arrays of the same length");
    return NULL;
  }
  gelu_forward(x, y, nx);
  return NULL;
}

static napi_value GeluGrad(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *x, *dy, *dx;
  size_t nx, ndy, ndx;
  if (argc != 3 || !typed_array(env, argv[0], napi_float32_array, &x, &nx) ||
      !typed_array(env, argv[1], napi_float32_array, &dy, &ndy) ||
      !typed_array(env, argv[2], napi_float32_array, &dx, &ndx) || nx != ndy || nx != ndx) {
    napi_throw_type_error(env, NULL, "geluGrad: expected three Float32Arrays of the same length");
    return NULL;
  }
  gelu_backward(x, dy, dx, nx);
  return NULL;
}

// norm(op, x, p, q, out, d, eps): the norms of native/norms.c over rows of d (x.length / d rows).
//   op 0 layer norm        p = gamma, q = beta, out = y
//   op 1 its dx            p = gamma, q = dy,   out = dx
//   op 2 its dgamma        p = dy,    q unused, out = dgamma (d)
//   op 3 RMS norm          p = scale, q unused, out = y
//   op 4 its dx            p = scale, q = dy,   out = dx
//   op 5 its dscale        p = dy,    q unused, out = dscale (d)
static napi_value Norm(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int op, d;
  double eps;
  void *x, *p, *q = NULL, *out;
  size_t nx, np, nq = 0, nout;
  napi_valuetype q_type = napi_null;
  if (argc != 7 || napi_get_value_int32(env, argv[0], &op) != napi_ok || op < 0 || op > 5 ||
      !typed_array(env, argv[1], napi_float32_array, &x, &nx) ||
      !typed_array(env, argv[2], napi_float32_array, &p, &np) || napi_typeof(env, argv[3], &q_type) != napi_ok ||
      (q_type != napi_null && !typed_array(env, argv[3], napi_float32_array, &q, &nq)) ||
      !typed_array(env, argv[4], napi_float32_array, &out, &nout) ||
      napi_get_value_int32(env, argv[5], &d) != napi_ok || napi_get_value_double(env, argv[6], &eps) != napi_ok ||
      d < 1 || nx % (size_t)d != 0) {
    napi_throw_type_error(env, NULL, "norm: expected (op, x, p, q | null, out, d, eps) with x.length a multiple of d");
    return NULL;
  }
  size_t rows = nx / (size_t)d;
  int per_row_p = op == 2 || op == 5;  // p is dy
  int needs_q = op == 0 || op == 1 || op == 4;
  int out_is_d = op == 2 || op == 5;
  if (np != (per_row_p ? nx : (size_t)d) || (needs_q && nq != (op == 0 ? (size_t)d : nx)) ||
      nout != (out_is_d ? (size_t)d : nx)) {
    napi_throw_range_error(env, NULL, "norm: buffer lengths do not agree with the op");
    return NULL;
  }
  float e = (float)eps;
  switch (op) {
    case 0: layer_norm(x, p, q, out, rows, d, e); break;
    case 1: layer_norm_grad_x(x, p, q, out, rows, d, e); break;
    case 2: layer_norm_grad_gamma(x, p, out, rows, d, e); break;
    case 3: rms_norm(x, p, out, rows, d, e); break;
    case 4: rms_norm_grad_x(x, p, q, out, rows, d, e); break;
    default: rms_norm_grad_scale(x, p, out, rows, d, e); break;
  }
  return NULL;
}

// nibbleScanTop(codes: Uint8Array, rows: number, query: Int8Array, alive: Uint8Array | null, outRows: Int32Array,
// outScores: Int32Array): number. The best outRows.length of `rows` rows of 4-bit codes against the query
// (native/nibble_scan.h: query.length / 8 chunks), best first, into outRows and outScores; returns how many.
static napi_value NibbleScanTop(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *codes, *query, *alive = NULL, *rows, *scores;
  size_t ncodes, nquery, nalive = 0, nrows, nscores;
  uint32_t count = 0;
  napi_valuetype alive_type = napi_null;
  if (argc == 6) CHECK(napi_typeof(env, argv[3], &alive_type));
  if (argc != 6 || !typed_array(env, argv[0], napi_uint8_array, &codes, &ncodes) ||
      napi_get_value_uint32(env, argv[1], &count) != napi_ok ||
      !typed_array(env, argv[2], napi_int8_array, &query, &nquery) || nquery == 0 || nquery % 8 != 0 ||
      ncodes < ((size_t)count + 15) / 16 * 16 * (nquery / 2) ||
      (alive_type != napi_null && (!typed_array(env, argv[3], napi_uint8_array, &alive, &nalive) || nalive < count)) ||
      !typed_array(env, argv[4], napi_int32_array, &rows, &nrows) ||
      !typed_array(env, argv[5], napi_int32_array, &scores, &nscores) || nscores != nrows) {
    napi_throw_type_error(env, NULL,
                          "nibbleScanTop: expected (codes: Uint8Array of the rows' groups of 16, rows: count, query: "
                          "Int8Array of a multiple of 8, alive: Uint8Array of rows or null, outRows and outScores: "
                          "Int32Arrays of k)");
    return NULL;
  }
  size_t found = nibble_scan_top(codes, count, nquery / 8, query, alive, nrows, rows, scores);
  napi_value result;
  CHECK(napi_create_uint32(env, (uint32_t)found, &result));
  return result;
}

// nibbleScanKernel(use?: string): string. Which kernel nibbleScanTop runs on this CPU; with `use`, first switches
// to that one ("avx512-vnni", "avx2", "scalar"), throwing when this CPU lacks it.
static napi_value NibbleScanKernel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc == 1) {
    char name[32];
    size_t length;
    if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) != napi_ok || !nibble_scan_use(name)) {
      napi_throw_error(env, NULL, "nibbleScanKernel: expected avx512-vnni, avx2 or scalar, one this CPU has");
      return NULL;
    }
  }
  napi_value result;
  CHECK(napi_create_string_utf8(env, nibble_scan_kernel(), NAPI_AUTO_LENGTH, &result));
  return result;
}

// sumLeading(x: Float32Array, out: Float32Array): undefined. out[j] = sum_i x[i * out.length + j].
static napi_value SumLeading(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *x, *out;
  size_t nx, nout;
  if (argc != 2 || !typed_array(env, argv[0], napi_float32_array, &x, &nx) ||
      !typed_array(env, argv[1], napi_float32_array, &out, &nout) || nout == 0 || nx % nout != 0) {
    napi_throw_type_error(env, NULL, "sumLeading: expected (x, out: Float32Arrays, x.length a multiple of out.length)");
    return NULL;
  }
  sum_leading(x, out, nx / nout, nout);
  return NULL;
}

// addRows(x: Float32Array, row: Float32Array): undefined. x[i * row.length + j] += row[j], in place.
static napi_value AddRows(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *x, *row;
  size_t nx, nrow;
  if (argc != 2 || !typed_array(env, argv[0], napi_float32_array, &x, &nx) ||
      !typed_array(env, argv[1], napi_float32_array, &row, &nrow) || nrow == 0 || nx % nrow != 0) {
    napi_throw_type_error(env, NULL, "addRows: expected (x, row: Float32Arrays, x.length a multiple of row.length)");
    return NULL;
  }
  const float *xs = x, *rs = row;
  if (rs < xs + nx && xs < rs + nrow) {
    napi_throw_range_error(env, NULL, "addRows: x and row overlap");
    return NULL;
  }
  add_rows(x, row, nx / nrow, nrow);
  return NULL;
}

// addInto(out: Float32Array, x: Float32Array): undefined. out[i] += x[i]; same lengths, not overlapping.
static napi_value AddInto(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *out, *x;
  size_t nout, nx;
  if (argc != 2 || !typed_array(env, argv[0], napi_float32_array, &out, &nout) ||
      !typed_array(env, argv[1], napi_float32_array, &x, &nx) || nout != nx) {
    napi_throw_type_error(env, NULL, "addInto: expected (out, x: Float32Arrays of the same length)");
    return NULL;
  }
  float *o = out;
  const float *v = x;
  if (nout > 0 && o < v + nx && v < o + nout && o != v) {
    napi_throw_range_error(env, NULL, "addInto: out and x overlap");
    return NULL;
  }
  if (o == v) {
    for (size_t i = 0; i < nout; i++) o[i] += o[i];
  } else {
    add_into(o, v, nout);
  }
  return NULL;
}

// videoPatches(video: Float32Array, out: Float32Array, dims: Int32Array [batch, frames, height, width, pt, ph, pw],
//              t, h, w: Int32Array (n token positions on the patch grid)): undefined
static napi_value VideoPatches(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *video, *out, *dims, *pos[3];
  size_t nvideo, nout, ndims, npos[3];
  int ok = argc == 6 && typed_array(env, argv[0], napi_float32_array, &video, &nvideo) &&
           typed_array(env, argv[1], napi_float32_array, &out, &nout) &&
           typed_array(env, argv[2], napi_int32_array, &dims, &ndims) && ndims == 7;
  for (int i = 0; ok && i < 3; i++) ok = typed_array(env, argv[3 + i], napi_int32_array, &pos[i], &npos[i]);
  if (!ok || npos[1] != npos[0] || npos[2] != npos[0]) {
    napi_throw_type_error(env, NULL,
                          "videoPatches: expected (video, out: Float32Array, dims: Int32Array(7), t, h, w: Int32Arrays "
                          "of one length)");
    return NULL;
  }
  const int32_t *d = dims;
  for (int i = 0; i < 7; i++) {
    if (d[i] < 0 || (i >= 4 && d[i] == 0)) {
      napi_throw_range_error(env, NULL, "videoPatches: dimensions must be >= 0 and patch sizes > 0");
      return NULL;
    }
  }
  size_t batch = (size_t)d[0], frames = (size_t)d[1], height = (size_t)d[2], width = (size_t)d[3];
  size_t pt = (size_t)d[4], ph = (size_t)d[5], pw = (size_t)d[6], n = npos[0];
  const int32_t *t = pos[0], *h = pos[1], *w = pos[2];
  for (size_t k = 0; k < n; k++) {
    if (t[k] < 0 || h[k] < 0 || w[k] < 0 || ((size_t)t[k] + 1) * pt > frames || ((size_t)h[k] + 1) * ph > height ||
        ((size_t)w[k] + 1) * pw > width) {
      napi_throw_range_error(env, NULL, "videoPatches: a token position is outside the clip");
      return NULL;
    }
  }
  // Products that wrap would pass the length checks with small arrays: refuse them.
  size_t video_size, out_size;
  if (__builtin_mul_overflow(batch * 3, frames, &video_size) ||
      __builtin_mul_overflow(video_size, height, &video_size) ||
      __builtin_mul_overflow(video_size, width, &video_size) || __builtin_mul_overflow(batch * 3, n, &out_size) ||
      __builtin_mul_overflow(out_size, pt, &out_size) || __builtin_mul_overflow(out_size, ph, &out_size) ||
      __builtin_mul_overflow(out_size, pw, &out_size) || nvideo != video_size || nout != out_size) {
    napi_throw_range_error(env, NULL, "videoPatches: video or out length does not match the dimensions");
    return NULL;
  }
  video_patches(video, out, batch, frames, height, width, pt, ph, pw, t, h, w, n);
  return NULL;
}

// ortOpen(library: string): undefined. Opens ONNX Runtime's C API in the library at that path (native/ort_gemm.c).
static napi_value OrtOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4096], message[512];
  size_t length;
  if (argc != 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok ||
      length + 1 >= sizeof path) {
    napi_throw_type_error(env, NULL, "ortOpen: expected the library's path");
    return NULL;
  }
  if (ort_gemm_open(path, message, sizeof message)) napi_throw_error(env, NULL, message);
  return NULL;
}

// Marks the externals ortSession makes, so ortMatmul takes no other addon's external for a session.
static const napi_type_tag SESSION_TAG = {0x7661747461727430ULL, 0x6f72742d67656d6dULL};

static void release_session(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ort_gemm_session_release(data);
}

// ortSession(model: Uint8Array, threads: number): External. A session of the ONNX model bytes.
static napi_value OrtSession(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *model;
  size_t bytes;
  int threads;
  if (argc != 2 || !typed_array(env, argv[0], napi_uint8_array, &model, &bytes) ||
      napi_get_value_int32(env, argv[1], &threads) != napi_ok || threads < 1) {
    napi_throw_type_error(env, NULL, "ortSession: expected (model: Uint8Array, threads >= 1)");
    return NULL;
  }
  char message[512];
  ort_gemm_session *s = ort_gemm_session_create(model, bytes, threads, message, sizeof message);
  if (!s) {
    napi_throw_error(env, NULL, message);
    return NULL;
  }
  napi_value result;
  if (napi_create_external(env, s, release_session, NULL, &result) != napi_ok ||
      napi_type_tag_object(env, result, &SESSION_TAG) != napi_ok) {
    ort_gemm_session_release(s);
    napi_throw_error(env, NULL, "ortSession: could not wrap the session");
    return NULL;
  }
  return result;
}

// Reads a dims array (JS numbers, rank 1-3) whose product must be `length`.
static int read_dims(napi_env env, napi_value value, int64_t dims[3], size_t *rank, size_t length) {
  uint32_t n;
  bool is;
  if (napi_is_array(env, value, &is) != napi_ok || !is || napi_get_array_length(env, value, &n) != napi_ok ||
      n < 1 || n > 3) {
    return 0;
  }
  size_t product = 1;
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    double d;
    if (napi_get_element(env, value, i, &element) != napi_ok || napi_get_value_double(env, element, &d) != napi_ok ||
        !(d >= 0 && d <= 2147483647.0) || d != (double)(int64_t)d) {
      return 0;
    }
    dims[i] = (int64_t)d;
    if (__builtin_mul_overflow(product, (size_t)d, &product)) return 0;
  }
  *rank = n;
  return product == length;
}

// ortMatmul(session: External, a: Float32Array, dimsA: number[], b, dimsB, out: Float32Array, dimsOut): undefined
static napi_value OrtMatmul(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *session = NULL, *a, *b, *out;
  size_t na, nb, nout, ra, rb, rout;
  int64_t da[3], db[3], dout[3];
  napi_valuetype kind;
  bool tagged = false;
  if (argc != 7 || napi_typeof(env, argv[0], &kind) != napi_ok || kind != napi_external ||
      napi_check_object_type_tag(env, argv[0], &SESSION_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &session) != napi_ok ||
      !typed_array(env, argv[1], napi_float32_array, &a, &na) ||
      !typed_array(env, argv[3], napi_float32_array, &b, &nb) ||
      !typed_array(env, argv[5], napi_float32_array, &out, &nout)) {
    napi_throw_type_error(env, NULL, "ortMatmul: expected (session, a, dimsA, b, dimsB, out: Float32Arrays + dims)");
    return NULL;
  }
  if (!read_dims(env, argv[2], da, &ra, na) || !read_dims(env, argv[4], db, &rb, nb) ||
      !read_dims(env, argv[6], dout, &rout, nout)) {
    napi_throw_range_error(env, NULL, "ortMatmul: dims must be 1 to 3 whole numbers whose product is the length");
    return NULL;
  }
  char message[512];
  if (ort_gemm_run(session, a, da, ra, b, db, rb, out, dout, rout, na, nb, nout, message, sizeof message)) {
    napi_throw_error(env, NULL, message);
  }
  return NULL;
}

// sgemm(a, dimsA, b, dimsB, transA: boolean, transB: boolean, out, dimsOut, threads): undefined. op(A) @ op(B) into
// out as ortMatmul: ranks 2 or 3, a rank-3 operand's leading axis a batch broadcast against a rank-2 one (or one of
// size 1). Throws a RangeError when the dims do not describe such a product.
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *a, *b, *out;
  size_t na, nb, nout, ra, rb, rout;
  int64_t da[3], db[3], dout[3];
  bool trans_a, trans_b;
  int threads;
  if (argc != 9 || !typed_array(env, argv[0], napi_float32_array, &a, &na) ||
      !typed_array(env, argv[2], napi_float32_array, &b, &nb) ||
      !typed_array(env, argv[6], napi_float32_array, &out, &nout) ||
      napi_get_value_bool(env, argv[4], &trans_a) != napi_ok || napi_get_value_bool(env, argv[5], &trans_b) != napi_ok ||
      napi_get_value_int32(env, argv[8], &threads) != napi_ok || threads < 1) {
    napi_throw_type_error(env, NULL,
                          "sgemm: expected (a, dimsA, b, dimsB, transA, transB, out, dimsOut: Float32Arrays + dims, "
                          "threads >= 1)");
    return NULL;
  }
  if (!read_dims(env, argv[1], da, &ra, na) || !read_dims(env, argv[3], db, &rb, nb) ||
      !read_dims(env, argv[7], dout, &rout, nout) || ra < 2 || rb < 2 || rout < 2) {
    napi_throw_range_error(env, NULL, "sgemm: dims must be 2 or 3 whole numbers whose product is the length");
    return NULL;
  }
  const size_t batch_a = ra == 3 ? (size_t)da[0] : 1, batch_b = rb == 3 ? (size_t)db[0] : 1;
  const size_t a0 = (size_t)da[ra - 2], a1 = (size_t)da[ra - 1], b0 = (size_t)db[rb - 2], b1 = (size_t)db[rb - 1];
  const size_t m = trans_a ? a1 : a0, k = trans_a ? a0 : a1, kb = trans_b ? b1 : b0, n = trans_b ? b0 : b1;
  const size_t batch = batch_a > batch_b ? batch_a : batch_b;
  const size_t batch_out = rout == 3 ? (size_t)dout[0] : 1;
  if (k != kb || (batch_a != batch && batch_a != 1) || (batch_b != batch && batch_b != 1) ||
      (size_t)dout[rout - 2] != m || (size_t)dout[rout - 1] != n || batch_out != batch) {
    napi_throw_range_error(env, NULL, "sgemm: the operands' and the output's dims do not make a product");
    return NULL;
  }
  int bad;
  if (batch > 1 && batch_b == 1 && !trans_a) {
    // Rows of every batch of A against one B: a single product over batch * m rows.
    bad = sgemm(a, b, out, 1, batch_a * m, n, k, 0, trans_b, 0, 0, 0, threads);
  } else {
    bad = sgemm(a, b, out, batch, m, n, k, trans_a, trans_b, batch_a == 1 ? 0 : m * k, batch_b == 1 ? 0 : k * n,
                m * n, threads);
  }
  if (bad) napi_throw_error(env, NULL, "sgemm: out of memory for the packing buffers");
  return NULL;
}

// sgemmKernel(name?: string): string. The microkernel in use; with a name ("avx512", "avx2", "c"), forces it first
// (tests) and throws when this processor cannot run it.
static napi_value SgemmKernel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc == 1) {
    char name[16];
    size_t len;
    if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || sgemm_use_kernel(name)) {
      napi_throw_error(env, NULL, "sgemmKernel: unknown kernel, or not supported by this processor");
      return NULL;
    }
  }
  napi_value result;
  CHECK(napi_create_string_utf8(env, sgemm_kernel_name(), NAPI_AUTO_LENGTH, &result));
  return result;
}

// sumSquares(g: Float32Array): number (NaN entries count as 0)
static napi_value SumSquares(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *g;
  size_t n;
  if (argc != 1 || !typed_array(env, argv[0], napi_float32_array, &g, &n)) {
    napi_throw_type_error(env, NULL, "sumSquares: expected a Float32Array");
    return NULL;
  }
  napi_value result;
  CHECK(napi_create_double(env, sum_squares(g, n), &result));
  return result;
}

// adamUpdate(p, m, v, g: Float32Array (same length), factor, beta1, beta2, epsilon, lrT[, rows: Int32Array, width]):
// number (g's sum of squares). With rows (ascending, distinct): g is zero outside those rows of `width` elements.
static napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *arrays[4];
  size_t lengths[4];
  for (int i = 0; i < 4; i++) {
    if ((argc != 9 && argc != 11) || !typed_array(env, argv[i], napi_float32_array, &arrays[i], &lengths[i])) {
      napi_throw_type_error(env, NULL, "adamUpdate: expected (p, m, v, g) Float32Arrays, 5 numbers[, rows, width]");
      return NULL;
    }
  }
  if (lengths[1] != lengths[0] || lengths[2] != lengths[0] || lengths[3] != lengths[0]) {
    napi_throw_range_error(env, NULL, "adamUpdate: p, m, v and g must have the same length");
    return NULL;
  }
  double k[5];
  for (int i = 0; i < 5; i++) CHECK(napi_get_value_double(env, argv[4 + i], &k[i]));
  double squares;
  if (argc == 11) {
    void *rows;
    size_t count;
    int32_t width;
    if (!typed_array(env, argv[9], napi_int32_array, &rows, &count) ||
        napi_get_value_int32(env, argv[10], &width) != napi_ok || width < 1 || lengths[0] % (size_t)width != 0) {
      napi_throw_type_error(env, NULL, "adamUpdate: rows must be an Int32Array and width divide the length");
      return NULL;
    }
    const int32_t *r = rows;
    const size_t total_rows = lengths[0] / (size_t)width;
    for (size_t i = 0; i < count; i++) {
      if (r[i] < 0 || (size_t)r[i] >= total_rows || (i > 0 && r[i] <= r[i - 1])) {
        napi_throw_range_error(env, NULL, "adamUpdate: rows must be ascending, distinct and in range");
        return NULL;
      }
    }
    squares = adam_update_rows(arrays[0], arrays[1], arrays[2], arrays[3], lengths[0], (size_t)width, r, count,
                               (float)k[0], k[1], k[2], (float)k[3], (float)k[4]);
  } else {
    squares = adam_update(arrays[0], arrays[1], arrays[2], arrays[3], lengths[0], (float)k[0], k[1], k[2],
                          (float)k[3], (float)k[4]);
  }
  napi_value result;
  CHECK(napi_create_double(env, squares, &result));
  return result;
}

static int export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
#ifdef __GLIBC__
  // Clip buffers (11 MB of decoded frames, 19 MB of augmented video per 32-frame clip) are above glibc's mmap
  // threshold, so each one was a fresh mapping whose first write faulted in every 4 KB page: ~9 ms to fill a fresh
  // 19 MB buffer here against ~2 ms for memory already in use. Served from the heap and not trimmed back at once,
  // the next clip reuses the same pages. Bounded: freed memory past 64 MB at the top of an arena still goes back.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  if (!export_function(env, exports, "cropResizeColour", CropResizeColour) ||
      !export_function(env, exports, "addGaussianNoise", AddGaussianNoise) ||
      !export_function(env, exports, "dropoutMask", DropoutMask) ||
      !export_function(env, exports, "dropoutApply", DropoutApply) ||
      !export_function(env, exports, "attention", Attention) || !export_function(env, exports, "norm", Norm) ||
      !export_function(env, exports, "gelu", Gelu) || !export_function(env, exports, "geluGrad", GeluGrad) ||
      !export_function(env, exports, "sumSquares", SumSquares) ||
      !export_function(env, exports, "sumLeading", SumLeading) ||
      !export_function(env, exports, "addRows", AddRows) ||
      !export_function(env, exports, "addInto", AddInto) ||
      !export_function(env, exports, "videoPatches", VideoPatches) ||
      !export_function(env, exports, "ortOpen", OrtOpen) || !export_function(env, exports, "ortSession", OrtSession) ||
      !export_function(env, exports, "ortMatmul", OrtMatmul) || !export_function(env, exports, "sgemm", Sgemm) ||
      !export_function(env, exports, "sgemmKernel", SgemmKernel) ||
      !export_function(env, exports, "adamUpdate", AdamUpdate) ||
      !export_function(env, exports, "nibbleScanTop", NibbleScanTop) ||
      !export_function(env, exports, "nibbleScanKernel", NibbleScanKernel)) {
    return NULL;
  }
  return exports;
}
