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
 * Splits a ref into `count` windows of `seconds`, their starts uniformly spaced from the start of [ref.start,
 * min(ref.end, duration)] to its end (one window: centred). Decode each with `window: "start"`. A video shorter than
 * one window gives `count` identical windows at its start (the decoder loops it, flagged `padded`).
 */
export function temporalWindows(
  ref: ClipRef,
  count: number,
  seconds: number,
  duration = ref.duration,
): ClipRef[] {
  if (!(Number.isInteger(count) && count >= 1))
    throw new RangeError(`temporalWindows: count must be >= 1, got ${count}`);
  const lo = Math.max(0, ref.start);
  const hi = Math.min(ref.end, duration ?? Number.POSITIVE_INFINITY);
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
