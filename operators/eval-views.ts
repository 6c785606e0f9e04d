/**
 * Evaluation views, free of randomness: N uniformly spaced temporal windows over a video, and per window a centre
 * crop or 3 spatial crops (short side resized to the crop size; crops at the start, centre and end of the long
 * side). Reference: retrieval uses 4 windows x centre crop; fine-tuned classification 4 windows x 3 crops, with the
 * 12 views' logits averaged.
 */
import type { ClipRef, DecodedClip, Example } from "../core/records.js";
import { type AugmentOptions, type AugmentParams, applyAugmentation } from "./augment.js";
import { centreCropBox, threeCropBoxes } from "./crop.js";

/**
 * DMVR's evaluation window starts, in frames of a sequence of `length` frames: `count` > 1 windows start at
 * `int(linspace(0, max(0, length - frames * stride), count))` (sample_linspace_sequence), one window at
 * `max(0, (length - frames * stride) // 2)` (sample_sequence, not random). A sequence shorter than a window gives
 * offset 0 and the window loops over it. Computed exactly (integer arithmetic, no float32 linspace).
 */
export function dmvrWindowOffsets(length: number, frames: number, stride: number, count: number): number[] {
  if (!(Number.isInteger(count) && count >= 1))
    throw new RangeError(`dmvrWindowOffsets: count must be >= 1, got ${count}`);
  const room = length - frames * stride;
  if (count === 1) return [Math.max(0, Math.floor(room / 2))];
  const max = Math.max(0, room);
  return Array.from({ length: count }, (_, k) => Math.floor((k * max) / (count - 1)));
}

/**
 * Splits a ref into `count` windows of `seconds`, their starts uniformly spaced from the start of [ref.start,
 * min(ref.end, duration)] to its end (one window: centred). Decode each with `window: "start"`. A video shorter than
 * one window gives `count` identical windows at its start (the decoder loops it, flagged `padded`). With `fps` (the
 * decoded frame rate) the starts snap to DMVR's frame offsets (`dmvrWindowOffsets` over the frames of the span);
 * without it they are the same formula in continuous time (within one frame of DMVR's).
 */
export function temporalWindows(
  ref: ClipRef,
  count: number,
  seconds: number,
  duration = ref.duration,
  fps?: number,
): ClipRef[] {
  if (!(Number.isInteger(count) && count >= 1))
    throw new RangeError(`temporalWindows: count must be >= 1, got ${count}`);
  const lo = Math.max(0, ref.start);
  const hi = Math.min(ref.end, duration ?? Number.POSITIVE_INFINITY);
  if (fps !== undefined && fps > 0 && Number.isFinite(hi)) {
    // Frames of the span and of a window; the 1e-9 keeps 3.2 s x 10 fps from flooring to 31.
    const length = Math.floor((hi - lo) * fps + 1e-9);
    const windowFrames = Math.round(seconds * fps);
    return dmvrWindowOffsets(length, windowFrames, 1, count).map((offset) => {
      const start = lo + offset / fps;
      return { ...ref, start, end: start + seconds };
    });
  }
  const room = Math.max(0, hi - lo - seconds);
  return Array.from({ length: count }, (_, k) => {
    const start = lo + (count === 1 ? room / 2 : (room * k) / (count - 1));
    return { ...ref, start, end: start + seconds };
  });
}

/** Evaluation keeps the picture as decoded: no flip, no colour, no audio noise. */
function viewParams(box: AugmentParams["box"]): AugmentParams {
  return { box, flip: false, colour: undefined };
}

export type ViewOptions = Partial<Pick<AugmentOptions, "outHeight" | "outWidth" | "numClasses" | "text">>;

/** Centre crop view (short side resized to the crop size, central crop). */
export function centreCropView(clip: DecodedClip, options: ViewOptions = {}): Example {
  const outHeight = options.outHeight ?? 224;
  const outWidth = options.outWidth ?? 224;
  const box = centreCropBox(clip.width, clip.height, outWidth, outHeight);
  return applyAugmentation(clip, viewParams(box), { ...options, outHeight, outWidth, audioNoise: 0 });
}

/** The 3 spatial crops of a clip, square, at the start, centre and end of its long side. */
export function threeCropViews(clip: DecodedClip, options: ViewOptions = {}): [Example, Example, Example] {
  const size = options.outHeight ?? options.outWidth ?? 224;
  const opts = { ...options, outHeight: size, outWidth: size, audioNoise: 0 };
  const [a, b, c] = threeCropBoxes(clip.width, clip.height);
  return [
    applyAugmentation(clip, viewParams(a), opts),
    applyAugmentation(clip, viewParams(b), opts),
    applyAugmentation(clip, viewParams(c), opts),
  ];
}

/** The spatial views of one decoded window: 1 (centre crop) or 3. */
export function spatialViews(clip: DecodedClip, spatial: 1 | 3, options: ViewOptions = {}): Example[] {
  return spatial === 3 ? threeCropViews(clip, options) : [centreCropView(clip, options)];
}
