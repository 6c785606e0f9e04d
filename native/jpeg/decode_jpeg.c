// JPEG -> RGB for the Parquet training source (operators/parquet-cut.ts), with libjpeg-turbo: only the region the
// clip's crop needs is decoded (jpeg_crop_scanline for the columns, jpeg_skip_scanlines above it, and the rows
// below it are never read), straight into the clip's frame buffer. Same library and settings as sharp's decoder
// (islow DCT, fancy upsampling), so the pixels are those of the whole frame, cropped (tested).
// A separate library from native/binding.c: it needs libjpeg's headers, and where they are missing the other
// kernels still build and this path falls back to sharp.
#include <node_api.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "../node_api_helpers.h"

struct error_manager {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr cinfo) {
  struct error_manager *e = (struct error_manager *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

// Warnings (e.g. "premature end of data") do not stop libjpeg; a damaged frame then decodes to grey. Count them as
// errors: the caller skips the clip and says why.
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

// Decodes rows [ry, ry + rh) x columns [rx, rx + rw) of a width x height RGB JPEG into out (rw * rh * 3 bytes).
// Returns NULL, or a message (in `message`) saying what was wrong.
static const char *decode_region(const uint8_t *data, size_t length, int width, int height, int rx, int ry, int rw,
                                 int rh, uint8_t *out, char *message, size_t message_size) {
  struct jpeg_decompress_struct cinfo;
  struct error_manager jerr;
  uint8_t *volatile row = NULL;
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = on_error;
  jerr.pub.emit_message = on_message;
  if (setjmp(jerr.jump)) {
    snprintf(message, message_size, "%s", jerr.message);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return message;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)length);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if ((int)cinfo.output_width != width || (int)cinfo.output_height != height || cinfo.output_components != 3) {
    snprintf(message, message_size, "a stored frame is %ux%ux%d, the row says %dx%dx3", cinfo.output_width,
             cinfo.output_height, cinfo.output_components, width, height);
    jpeg_destroy_decompress(&cinfo);
    return message;
  }
  // Whole iMCU columns only: the decoded span starts at or before rx and is at least as wide. A margin of one
  // iMCU (16 pixels) each side keeps the chroma neighbours the upsampler blends at the region's edges, so its
  // pixels are those of a whole-frame decode.
  int left = rx > 16 ? rx - 16 : 0;
  int right = rx + rw + 16 < width ? rx + rw + 16 : width;
  JDIMENSION x = (JDIMENSION)left, span = (JDIMENSION)(right - left);
  if (left > 0 || right < width) jpeg_crop_scanline(&cinfo, &x, &span);
  if (ry > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)ry);
  row = malloc((size_t)span * 3);
  if (!row) {
    jpeg_destroy_decompress(&cinfo);
    snprintf(message, message_size, "out of memory");
    return message;
  }
  size_t skip = (size_t)(rx - (int)x) * 3;
  for (int y = 0; y < rh; y++) {
    JSAMPROW rows[1] = {row};
    if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
      snprintf(message, message_size, "the frame ended at row %d of %d", ry + y, height);
      jpeg_destroy_decompress(&cinfo);
      free(row);
      return message;
    }
    memcpy(out + (size_t)y * rw * 3, row + skip, (size_t)rw * 3);
  }
  jpeg_abort_decompress(&cinfo);  // the rows below the region are not needed
  jpeg_destroy_decompress(&cinfo);
  free(row);
  return NULL;
}

// decodeJpegRegion(jpeg: Uint8Array, width, height, x, y, w, h, out: Uint8Array, outOffset): undefined; throws an
// Error with libjpeg's message for a damaged frame.
static napi_value DecodeJpegRegion(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 9) {
    napi_throw_type_error(env, NULL, "decodeJpegRegion: expected 9 arguments");
    return NULL;
  }
  void *jpeg, *out;
  size_t jpeg_len, out_len;
  if (!typed_array(env, argv[0], napi_uint8_array, &jpeg, &jpeg_len) ||
      !typed_array(env, argv[7], napi_uint8_array, &out, &out_len)) {
    napi_throw_type_error(env, NULL, "decodeJpegRegion: jpeg and out must be Uint8Arrays");
    return NULL;
  }
  int n[6];
  int64_t offset;
  for (int i = 0; i < 6; i++) {
    if (napi_get_value_int32(env, argv[1 + i], &n[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "decodeJpegRegion: sizes must be numbers");
      return NULL;
    }
  }
  if (napi_get_value_int64(env, argv[8], &offset) != napi_ok) {
    napi_throw_type_error(env, NULL, "decodeJpegRegion: outOffset must be a number");
    return NULL;
  }
  int width = n[0], height = n[1], rx = n[2], ry = n[3], rw = n[4], rh = n[5];
  if (width < 1 || height < 1 || rx < 0 || ry < 0 || rw < 1 || rh < 1 || rx > width - rw || ry > height - rh ||
      offset < 0 || (size_t)offset + (size_t)rw * rh * 3 > out_len) {
    napi_throw_range_error(env, NULL, "decodeJpegRegion: region, frame size and buffer do not agree");
    return NULL;
  }
  char message[JMSG_LENGTH_MAX + 64];
  const char *failed = decode_region(jpeg, jpeg_len, width, height, rx, ry, rw, rh, (uint8_t *)out + offset, message,
                                     sizeof message);
  if (failed) napi_throw_error(env, NULL, failed);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "decodeJpegRegion", NAPI_AUTO_LENGTH, DecodeJpegRegion, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "decodeJpegRegion", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}
