// biome-ignore-all lint/complexity/useMathMinMax: per-pixel hot loops, where a compare is cheaper than a call
/**
 * Spatial crops: where to crop (pure functions of the frame size and a seeded Random) and one kernel that crops,
 * resizes (bilinear) and optionally flips every frame of a clip the same way, writing floats in [0, 1].
 *
 * Measured (bench/pipeline.ts, 2 workers, 640x360 -> 224x224, on a shared 2-core machine): this kernel after a
 * short-side-256 decode ran at 7.2 clips/s and crop+scale+hflip in ffmpeg's filter graph at 7.2 (quiet machine), and
 * 3.9 vs 4.4 under load. The kernel then cost ~35 ms per 32x224x224 clip and the separate colour step ~55 ms; the
 * separable resize fused with colour (`cropResizeColour`) now costs ~15 ms without colour and ~30 ms with it
 * (`augmentMsPerClip` in the bench's JSON). The filter graph saves the resize but needs
 * the frame size before decoding (one ffprobe per clip). Default: typed arrays, which need no probe and keep the
 * exact half-pixel bilinear of tf.image.resize; `geometryIn: "ffmpeg"` in pipeline/stream.ts is the other.
 */
import { uninitialisedFloat32 } from "../core/buffers.js";
import type { ColourFactors, CropBox } from "../core/geometry.js";
import type { Random } from "../core/random.js";
import { cropResizeColourNative, useNativeKernels } from "../native/kernels.js";
import { finishColourFrame } from "./color.js";

export interface InceptionCropOptions {
  /** Range of the crop's area relative to the frame (reference: [0.08, 1]). */
  area: [number, number];
  /** Range of width/height, sampled log-uniformly (reference: [0.5, 2]). */
  aspect: [number, number];
  /** Draws before falling back to a centre crop (reference: 10). */
  attempts: number;
}

export const defaultInceptionCrop: InceptionCropOptions = { area: [0.08, 1], aspect: [0.5, 2], attempts: 10 };

/**
 * Inception-style random crop (as torchvision's RandomResizedCrop and TF's sample_distorted_bounding_box): draw a
 * relative area and a log-uniform aspect ratio until the box fits; after `attempts` misses, take the largest centred
 * box whose aspect is inside the range.
 */
export function inceptionCropBox(
  width: number,
  height: number,
  rng: Random,
  opts: InceptionCropOptions = defaultInceptionCrop,
): CropBox {
  const area = width * height;
  const logLo = Math.log(opts.aspect[0]);
  const logHi = Math.log(opts.aspect[1]);
  for (let i = 0; i < opts.attempts; i++) {
    const target = area * rng.uniform(opts.area[0], opts.area[1]);
    const ratio = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * ratio));
    const h = Math.round(Math.sqrt(target / ratio));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { x: rng.int(width - w + 1), y: rng.int(height - h + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < opts.aspect[0]) h = Math.round(w / opts.aspect[0]);
  else if (inRatio > opts.aspect[1]) w = Math.round(h * opts.aspect[1]);
  return centredBox(width, height, w, h);
}

export interface VggCropOptions {
  /** Short side the frame would be resized to before jitter (default: output size * 256/224). */
  minResize?: number;
  /** Scale jitter range (reference: [0.8, 1.2]). */
  scale: [number, number];
}

export const defaultVggCrop: VggCropOptions = { scale: [0.8, 1.2] };

/**
 * 'VGG' crop: resize the short side to `minResize * jitter`, then take a random `outSize` square. Expressed as a
 * box on the frame as it is, so the same crop+resize kernel does it in one pass.
 */
export function vggCropBox(
  width: number,
  height: number,
  outSize: number,
  rng: Random,
  opts: VggCropOptions = defaultVggCrop,
): CropBox {
  const minResize = opts.minResize ?? Math.round((outSize * 256) / 224);
  const resized = Math.max(outSize, Math.round(minResize * rng.uniform(opts.scale[0], opts.scale[1])));
  const side = Math.min(
    Math.min(width, height),
    Math.max(1, Math.round((outSize * Math.min(width, height)) / resized)),
  );
  return { x: rng.int(width - side + 1), y: rng.int(height - side + 1), width: side, height: side };
}

/** A box of the given size centred in the frame (clamped to it). */
export function centredBox(width: number, height: number, boxWidth: number, boxHeight: number): CropBox {
  const w = Math.min(width, Math.max(1, boxWidth));
  const h = Math.min(height, Math.max(1, boxHeight));
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), width: w, height: h };
}

/**
 * Evaluation centre crop: the frame's short side resized to `resizeShort` (default: the crop size), then the
 * central `outWidth x outHeight`. As a box on the frame as it is.
 */
export function centreCropBox(
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  resizeShort = Math.min(outWidth, outHeight),
): CropBox {
  const scale = Math.min(width, height) / resizeShort;
  return centredBox(width, height, Math.round(outWidth * scale), Math.round(outHeight * scale));
}

/**
 * Evaluation 3-crop: the short side resized to the crop size, then squares at the start, centre and end of the long
 * side (left/centre/right for landscape, top/centre/bottom for portrait). The centre offset is the reference's
 * (VATT multi_crop_image): round-half-even(long / 2 - floor(side / 2)), so a frame whose short side already is the
 * crop size gets exactly the reference's pixels.
 */
export function threeCropBoxes(width: number, height: number): [CropBox, CropBox, CropBox] {
  const side = Math.min(width, height);
  const along = (offset: number): CropBox =>
    width >= height
      ? { x: offset, y: 0, width: side, height: side }
      : { x: 0, y: offset, width: side, height: side };
  const long = Math.max(width, height);
  return [along(0), along(roundHalfEven(long / 2 - Math.floor(side / 2))), along(long - side)];
}

/** tf.math.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Source sample positions and weights for one axis of a half-pixel-centred bilinear resize (TF2 / PyTorch). */
function axisTable(
  offset: number,
  length: number,
  outLength: number,
): { lo: Int32Array; hi: Int32Array; w: Float32Array } {
  const lo = new Int32Array(outLength);
  const hi = new Int32Array(outLength);
  const w = new Float32Array(outLength);
  const scale = length / outLength;
  for (let o = 0; o < outLength; o++) {
    const src = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), length - 1);
    const i0 = Math.floor(src);
    lo[o] = offset + i0;
    hi[o] = offset + Math.min(i0 + 1, length - 1);
    w[o] = src - i0;
  }
  return { lo, hi, w };
}

/**
 * Crops `box` out of every frame of a T x H x W x 3 uint8 clip, resizes it bilinearly to outHeight x outWidth
 * (half-pixel centres, no antialiasing, like tf.image.resize) and mirrors it left-right when `flip`, writing
 * T x outHeight x outWidth x 3 floats in [0, 1]. The same box for every frame keeps the clip temporally consistent.
 */
export function cropResizeFrames(
  frames: Uint8Array,
  numFrames: number,
  height: number,
  width: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
  flip = false,
  out = new Float32Array(numFrames * outHeight * outWidth * 3),
): Float32Array {
  return cropResizeColour(
    frames,
    numFrames,
    height,
    width,
    box,
    outHeight,
    outWidth,
    flip,
    undefined,
    false,
    out,
  );
}

/** A horizontally interpolated source row (doubles, so the vertical step gives the same bits as a 2-D lerp). */
function lerpRow(
  frames: Uint8Array,
  start: number,
  x0: Int32Array,
  x1: Int32Array,
  wx: Float64Array,
  row: Float64Array,
): void {
  const n = x0.length;
  for (let o = 0, j = 0; o < n; o++, j += 3) {
    const a = start + x0[o];
    const b = start + x1[o];
    const f = wx[o];
    const r = frames[a];
    const g = frames[a + 1];
    const bl = frames[a + 2];
    row[j] = r + (frames[b] - r) * f;
    row[j + 1] = g + (frames[b + 1] - g) * f;
    row[j + 2] = bl + (frames[b + 2] - bl) * f;
  }
}

/**
 * The training kernel: crop + bilinear resize + flip (as `cropResizeFrames`) fused with the colour step
 * (operators/color.ts `colourAugment`: brightness, saturation, contrast, hue, clip) and the final `* 2 - 1` when
 * `symmetric`, writing T x outHeight x outWidth x 3 floats. Runs the native build (native.ts, vectorised C)
 * unless it was not built or `VATT_NATIVE=0`; `cropResizeColourScalar` below is the readable reference it is tested
 * against and the fallback.
 */
export function cropResizeColour(
  frames: Uint8Array,
  numFrames: number,
  height: number,
  width: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
  flip: boolean,
  colour: ColourFactors | undefined,
  symmetric: boolean,
  out = uninitialisedFloat32(numFrames * outHeight * outWidth * 3), // every element is written
): Float32Array {
  checkBox(box, width, height);
  const kernel = useNativeKernels ? cropResizeColourNative : cropResizeColourScalar;
  return kernel(frames, numFrames, height, width, box, outHeight, outWidth, flip, colour, symmetric, out);
}

function checkBox(box: CropBox, width: number, height: number): void {
  if (
    box.x < 0 ||
    box.y < 0 ||
    box.width < 1 ||
    box.height < 1 ||
    box.x + box.width > width ||
    box.y + box.height > height
  ) {
    throw new RangeError(
      `crop box ${box.width}x${box.height}+${box.x}+${box.y} does not fit in a ${width}x${height} frame`,
    );
  }
}

/**
 * The JavaScript build of `cropResizeColour` (the reference; `VATT_NATIVE=0` runs it). Two passes over each output
 * frame: (1) resample + brightness + saturation while summing the channel means contrast needs, (2)
 * `finishColourFrame`. Without colour factors it is one pass. The resize is separable:
 * each source row the frame needs is interpolated horizontally once (a two-row cache, rows only move down), then
 * each output row is one vertical lerp of two cached rows.
 */
export function cropResizeColourScalar(
  frames: Uint8Array,
  numFrames: number,
  height: number,
  width: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
  flip: boolean,
  colour: ColourFactors | undefined,
  symmetric: boolean,
  out = new Float32Array(numFrames * outHeight * outWidth * 3),
): Float32Array {
  checkBox(box, width, height);
  const xs = axisTable(box.x, box.width, outWidth);
  const ys = axisTable(box.y, box.height, outHeight);
  // Flip by reading the mirrored source column: no second pass. Offsets in bytes within a row.
  const x0 = new Int32Array(outWidth);
  const x1 = new Int32Array(outWidth);
  const wx = new Float64Array(outWidth);
  for (let o = 0; o < outWidth; o++) {
    const s = flip ? outWidth - 1 - o : o;
    x0[o] = xs.lo[s] * 3;
    x1[o] = xs.hi[s] * 3;
    wx[o] = xs.w[s];
  }
  const rowLen = outWidth * 3;
  const frameLen = outHeight * rowLen;
  const rowBytes = width * 3;
  const frameBytes = height * rowBytes;
  const inv = 1 / 255;
  const scale = symmetric ? 2 : 1;
  const shift = symmetric ? -1 : 0;
  const brightness = colour ? colour.brightness : 0;
  const saturation = colour ? Math.max(0, colour.saturation) : 0;
  const pixels = outHeight * outWidth;
  let rowA = new Float64Array(rowLen);
  let rowB = new Float64Array(rowLen);
  for (let t = 0; t < numFrames; t++) {
    const base = t * frameBytes;
    const outBase = t * frameLen;
    let tagA = -1; // source row held in rowA / rowB (this frame)
    let tagB = -1;
    let sr = 0;
    let sg = 0;
    let sb = 0;
    let p = outBase;
    for (let oy = 0; oy < outHeight; oy++) {
      const lo = ys.lo[oy];
      const hi = ys.hi[oy];
      // Rows only move down: rowA holds `lo`, rowB `hi` (the same buffer when lo === hi).
      if (tagA !== lo) {
        if (tagB === lo) {
          const tmp = rowA;
          rowA = rowB;
          rowB = tmp;
          tagA = lo;
          tagB = -1;
        } else {
          lerpRow(frames, base + lo * rowBytes, x0, x1, wx, rowA);
          tagA = lo;
        }
      }
      let bottom = rowA;
      if (hi !== lo) {
        if (tagB !== hi) {
          lerpRow(frames, base + hi * rowBytes, x0, x1, wx, rowB);
          tagB = hi;
        }
        bottom = rowB;
      }
      const top = rowA;
      const fy = ys.w[oy];
      if (!colour) {
        for (let j = 0; j < rowLen; j++) {
          const v = top[j];
          out[p++] = (v + (bottom[j] - v) * fy) * inv * scale + shift;
        }
        continue;
      }
      for (let j = 0; j < rowLen; j += 3) {
        const t0 = top[j];
        const t1 = top[j + 1];
        const t2 = top[j + 2];
        let r = (t0 + (bottom[j] - t0) * fy) * inv + brightness;
        let g = (t1 + (bottom[j + 1] - t1) * fy) * inv + brightness;
        let b = (t2 + (bottom[j + 2] - t2) * fy) * inv + brightness;
        // Saturation (TF's HSV kernel, see color.ts): keep h and v, s' = min(s * f, 1).
        const v = r > g ? (r > b ? r : b) : g > b ? g : b;
        if (v <= 0) {
          r = v;
          g = v;
          b = v;
        } else {
          const range = v - (r < g ? (r < b ? r : b) : g < b ? g : b);
          if (range > 0) {
            const k = saturation * range <= v ? saturation : v / range;
            r = v - (v - r) * k;
            g = v - (v - g) * k;
            b = v - (v - b) * k;
          }
        }
        out[p] = r;
        out[p + 1] = g;
        out[p + 2] = b;
        p += 3;
        sr += r;
        sg += g;
        sb += b;
      }
    }
    if (colour) {
      finishColourFrame(
        out,
        outBase,
        outBase + frameLen,
        sr / pixels,
        sg / pixels,
        sb / pixels,
        colour.contrast,
        colour.hue * 6,
        scale,
        shift,
      );
    }
  }
  return out;
}
