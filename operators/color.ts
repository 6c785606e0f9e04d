// biome-ignore-all lint/complexity/useMathMinMax: per-pixel hot loops, where a compare is cheaper than a call
/**
 * Colour augmentation on float RGB clips in [0, 1] (T x H x W x 3, Float32Array), with tf.image's adjust_*
 * semantics, in the reference order: brightness, saturation, contrast, hue, then clip to [0, 1].
 *
 * - brightness: x + delta (no clipping in between, as in TF).
 * - saturation: TF's HSV kernel: s' = clamp(s * f, 0, 1) with h and v kept. Computed without the HSV round trip:
 *   keeping h and v, every channel moves linearly away from v, x' = v - (v - x) * s'/s. A pixel whose max is <= 0
 *   has s = 0 in TF and comes back as (v, v, v); that is kept too.
 * - contrast: (x - mean) * f + mean with the mean per frame and per channel (TF treats each frame as an image).
 * - hue: TF's adjust_hue kernel: rotate h by delta turns, keeping the min and max channel.
 *
 * The fused `colourAugment` runs two tight passes per frame (brightness+saturation while summing channel means,
 * then contrast+hue+clip and optionally the [-1, 1] scaling); the single-op functions are its specification and
 * are what the tests compare it to.
 */
import type { ColourFactors } from "../core/geometry.js";
import type { Random } from "../core/random.js";

export interface ColourAugmentOptions {
  /** Chance the clip is colour-augmented at all (reference: 0.8). */
  probability: number;
  brightness: number;
  saturation: [number, number];
  contrast: [number, number];
  hue: number;
}

export const defaultColourAugment: ColourAugmentOptions = {
  probability: 0.8,
  brightness: 32 / 255,
  saturation: [0.6, 1.4],
  contrast: [0.6, 1.4],
  hue: 0.2,
};

/** One draw per clip: the factors, or undefined when this clip is left as it is. Always draws all five numbers. */
export function drawColourFactors(
  rng: Random,
  opts: ColourAugmentOptions = defaultColourAugment,
): ColourFactors | undefined {
  const apply = rng.next() < opts.probability;
  const factors = {
    brightness: rng.uniform(-opts.brightness, opts.brightness),
    saturation: rng.uniform(opts.saturation[0], opts.saturation[1]),
    contrast: rng.uniform(opts.contrast[0], opts.contrast[1]),
    hue: rng.uniform(-opts.hue, opts.hue),
  };
  return apply ? factors : undefined;
}

export function adjustBrightness(px: Float32Array, delta: number): Float32Array {
  for (let i = 0; i < px.length; i++) px[i] += delta;
  return px;
}

/** Scales the HSV saturation of one pixel at px[i..i+2] in place (TF's adjust_saturation). */
function saturatePixel(px: Float32Array, i: number, factor: number): void {
  const r = px[i];
  const g = px[i + 1];
  const b = px[i + 2];
  const v = r > g ? (r > b ? r : b) : g > b ? g : b;
  if (v <= 0) {
    px[i] = v;
    px[i + 1] = v;
    px[i + 2] = v;
    return;
  }
  const min = r < g ? (r < b ? r : b) : g < b ? g : b;
  const range = v - min;
  if (range <= 0) return;
  // s = range / v; s' = min(s * f, 1); ratio s'/s = min(f, v / range).
  const k = Math.min(factor, v / range);
  px[i] = v - (v - r) * k;
  px[i + 1] = v - (v - g) * k;
  px[i + 2] = v - (v - b) * k;
}

export function adjustSaturation(px: Float32Array, factor: number): Float32Array {
  const f = Math.max(0, factor);
  for (let i = 0; i < px.length; i += 3) saturatePixel(px, i, f);
  return px;
}

/** (x - mean) * factor + mean, the mean taken per frame and per channel. */
export function adjustContrast(px: Float32Array, numFrames: number, factor: number): Float32Array {
  const frameLen = px.length / numFrames;
  const pixels = frameLen / 3;
  for (let t = 0; t < numFrames; t++) {
    const base = t * frameLen;
    let sr = 0;
    let sg = 0;
    let sb = 0;
    for (let i = base; i < base + frameLen; i += 3) {
      sr += px[i];
      sg += px[i + 1];
      sb += px[i + 2];
    }
    contrastFrame(px, base, frameLen, sr / pixels, sg / pixels, sb / pixels, factor);
  }
  return px;
}

function contrastFrame(
  px: Float32Array,
  base: number,
  frameLen: number,
  mr: number,
  mg: number,
  mb: number,
  f: number,
): void {
  for (let i = base; i < base + frameLen; i += 3) {
    px[i] = (px[i] - mr) * f + mr;
    px[i + 1] = (px[i + 1] - mg) * f + mg;
    px[i + 2] = (px[i + 2] - mb) * f + mb;
  }
}

/** Rotates the hue of one pixel at px[i..i+2] by `delta6` sixths of a turn in place (TF's adjust_hue kernel). */
function rotateHuePixel(px: Float32Array, i: number, delta6: number): void {
  const r = px[i];
  const g = px[i + 1];
  const b = px[i + 2];
  let vMax: number;
  let vMid: number;
  let vMin: number;
  let category: number;
  if (r < g) {
    if (b < r) {
      vMax = g;
      vMid = r;
      vMin = b;
      category = 1;
    } else if (b > g) {
      vMax = b;
      vMid = g;
      vMin = r;
      category = 3;
    } else {
      vMax = g;
      vMid = b;
      vMin = r;
      category = 2;
    }
  } else if (b < g) {
    vMax = r;
    vMid = g;
    vMin = b;
    category = 0;
  } else if (b > r) {
    vMax = b;
    vMid = r;
    vMin = g;
    category = 4;
  } else {
    vMax = r;
    vMid = b;
    vMin = g;
    category = 5;
  }
  if (vMax === vMin) return; // grey: hue undefined, TF leaves it
  const ratio0 = (vMid - vMin) / (vMax - vMin);
  let h = category + ((category & 1) === 0 ? ratio0 : 1 - ratio0) + delta6;
  while (h < 0) h += 6;
  while (h >= 6) h -= 6;
  const cat = Math.floor(h);
  let ratio = h - cat;
  if ((cat & 1) !== 0) ratio = 1 - ratio;
  const mid = vMin + ratio * (vMax - vMin);
  switch (cat) {
    case 0:
      px[i] = vMax;
      px[i + 1] = mid;
      px[i + 2] = vMin;
      break;
    case 1:
      px[i] = mid;
      px[i + 1] = vMax;
      px[i + 2] = vMin;
      break;
    case 2:
      px[i] = vMin;
      px[i + 1] = vMax;
      px[i + 2] = mid;
      break;
    case 3:
      px[i] = vMin;
      px[i + 1] = mid;
      px[i + 2] = vMax;
      break;
    case 4:
      px[i] = mid;
      px[i + 1] = vMin;
      px[i + 2] = vMax;
      break;
    default:
      px[i] = vMax;
      px[i + 1] = vMin;
      px[i + 2] = mid;
  }
}

/** Rotates hue by `delta` turns (TF: delta in [-0.5, 0.5]). */
export function adjustHue(px: Float32Array, delta: number): Float32Array {
  const d6 = delta * 6;
  for (let i = 0; i < px.length; i += 3) rotateHuePixel(px, i, d6);
  return px;
}

export function clipUnit(px: Float32Array): Float32Array {
  for (let i = 0; i < px.length; i++) {
    const v = px[i];
    px[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return px;
}

/** [0, 1] -> [-1, 1]: x * 2 - 1 (the reference's x * 2/255 - 1 on uint8). */
export function toSymmetricRange(px: Float32Array): Float32Array {
  for (let i = 0; i < px.length; i++) px[i] = px[i] * 2 - 1;
  return px;
}

/**
 * The second pass of the fused colour step over one frame, px[base..end), in place: contrast around the frame's
 * channel means (mr, mg, mb), hue rotation by `d6` sixths of a turn, clip to [0, 1], then `* scale + shift`.
 * One tight loop, no calls per pixel: TF's adjust_hue kernel (keep min and max, rotate h) written out.
 */
export function finishColourFrame(
  px: Float32Array,
  base: number,
  end: number,
  mr: number,
  mg: number,
  mb: number,
  contrast: number,
  d6: number,
  scale: number,
  shift: number,
): void {
  // Hue is rotated modulo 6: keep the offset in [0, 6) so one subtraction wraps.
  let dh = d6 % 6;
  if (dh < 0) dh += 6;
  for (let i = base; i < end; i += 3) {
    let r = (px[i] - mr) * contrast + mr;
    let g = (px[i + 1] - mg) * contrast + mg;
    let b = (px[i + 2] - mb) * contrast + mb;
    // TF's categories (ties broken as in rotateHuePixel): h in sixths of a turn from the max, mid and min.
    let vMax: number;
    let vMin: number;
    let h: number;
    if (r < g) {
      if (b < r) {
        vMax = g;
        vMin = b;
        h = 2 - (r - b) / (g - b);
      } else if (b > g) {
        vMax = b;
        vMin = r;
        h = 4 - (g - r) / (b - r);
      } else {
        vMax = g;
        vMin = r;
        h = 2 + (b - r) / (g - r);
      }
    } else if (b < g) {
      vMax = r;
      vMin = b;
      h = (g - b) / (r - b);
    } else if (b > r) {
      vMax = b;
      vMin = g;
      h = 4 + (r - g) / (b - g);
    } else {
      vMax = r;
      vMin = g;
      h = r === g ? -1 : 6 - (b - g) / (r - g);
    }
    if (h >= 0) {
      // not grey (grey: hue undefined, TF leaves the pixel)
      h += dh;
      if (h >= 6) h -= 6;
      if (h >= 6) h -= 6;
      const range = vMax - vMin;
      if (h < 3) {
        if (h < 1) {
          r = vMax;
          g = vMin + h * range;
          b = vMin;
        } else if (h < 2) {
          r = vMin + (2 - h) * range;
          g = vMax;
          b = vMin;
        } else {
          r = vMin;
          g = vMax;
          b = vMin + (h - 2) * range;
        }
      } else if (h < 4) {
        r = vMin;
        g = vMin + (4 - h) * range;
        b = vMax;
      } else if (h < 5) {
        r = vMin + (h - 4) * range;
        g = vMin;
        b = vMax;
      } else {
        r = vMax;
        g = vMin;
        b = vMin + (6 - h) * range;
      }
    }
    px[i] = (r < 0 ? 0 : r > 1 ? 1 : r) * scale + shift;
    px[i + 1] = (g < 0 ? 0 : g > 1 ? 1 : g) * scale + shift;
    px[i + 2] = (b < 0 ? 0 : b > 1 ? 1 : b) * scale + shift;
  }
}

/**
 * The whole colour step on a T x H x W x 3 clip in [0, 1], in place: brightness, saturation, contrast, hue, clip,
 * and when `symmetric` the final scaling to [-1, 1]. With no factors (the clip was not drawn for colour), only the
 * scaling runs. Equal to the single-op functions applied in that order (to float32 rounding: the fused passes keep
 * each pixel in doubles between the ops).
 */
export function colourAugment(
  px: Float32Array,
  numFrames: number,
  factors: ColourFactors | undefined,
  symmetric = true,
): Float32Array {
  if (!factors) return symmetric ? toSymmetricRange(px) : px;
  const { brightness, contrast } = factors;
  const saturation = Math.max(0, factors.saturation);
  const d6 = factors.hue * 6;
  const frameLen = px.length / numFrames;
  const pixels = frameLen / 3;
  const scale = symmetric ? 2 : 1;
  const shift = symmetric ? -1 : 0;
  for (let t = 0; t < numFrames; t++) {
    const base = t * frameLen;
    const end = base + frameLen;
    let sr = 0;
    let sg = 0;
    let sb = 0;
    for (let i = base; i < end; i += 3) {
      let r = px[i] + brightness;
      let g = px[i + 1] + brightness;
      let b = px[i + 2] + brightness;
      const v = r > g ? (r > b ? r : b) : g > b ? g : b;
      if (v <= 0) {
        r = v;
        g = v;
        b = v;
      } else {
        const range = v - (r < g ? (r < b ? r : b) : g < b ? g : b);
        if (range > 0) {
          // k = min(f, v / range): s' = min(s * f, 1)
          const k = saturation * range <= v ? saturation : v / range;
          r = v - (v - r) * k;
          g = v - (v - g) * k;
          b = v - (v - b) * k;
        }
      }
      px[i] = r;
      px[i + 1] = g;
      px[i + 2] = b;
      sr += r;
      sg += g;
      sb += b;
    }
    finishColourFrame(px, base, end, sr / pixels, sg / pixels, sb / pixels, contrast, d6, scale, shift);
  }
  return px;
}
