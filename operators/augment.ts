/**
 * Training augmentation: DecodedClip -> Example. One draw per clip (every frame gets the same crop, flip and
 * colour factors), all keyed by (seed, epoch, index, purpose), so sample i of epoch e is augmented identically in
 * every run, at any concurrency.
 *
 * Order (reference): crop -> bilinear resize -> horizontal flip -> colour (brightness, saturation, contrast, hue,
 * clip) -> scale to [-1, 1]. Audio: clip to [-1, 1], then optional Gaussian noise sigma = 0.01 * max|x|.
 */

import type { ColourFactors, CropBox } from "../core/geometry.js";
import { multiHot } from "../core/labels.js";
import { randomFor } from "../core/random.js";
import type { ClipRef, DecodedClip, Example } from "../core/records.js";
import { addGaussianNoise } from "./audio.js";
import { type ColourAugmentOptions, defaultColourAugment, drawColourFactors } from "./color.js";
import {
  centreCropBox,
  cropResizeColour,
  defaultInceptionCrop,
  defaultVggCrop,
  type InceptionCropOptions,
  inceptionCropBox,
  type VggCropOptions,
  vggCropBox,
} from "./crop.js";

/** Word ids and mask for a clip's captions (the tokenizer's job; see operators/tokenize when present). */
export type TextFor = (ref: ClipRef) => { textIds: Int32Array; textMask: Float32Array };

export interface AugmentOptions {
  seed: number;
  outHeight: number;
  outWidth: number;
  /** "inception": random area/aspect crop (default); "vgg": scale jitter + random square; "centre": no randomness. */
  crop: "inception" | "vgg" | "centre";
  inception: InceptionCropOptions;
  vgg: VggCropOptions;
  /** Chance of a left-right flip of the whole clip (reference: 0.5; 0 turns it off). */
  flipProbability: number;
  /** Colour augmentation, or false for none. */
  colour: ColourAugmentOptions | false;
  /** Relative sigma of the Gaussian audio noise (reference: 0.01), or 0 for none. */
  audioNoise: number;
  /** Length of the multi-hot label vector; 0 leaves `labels` empty. */
  numClasses: number;
  /** Captions -> word ids; default: no text (K = 0). */
  text?: TextFor;
}

export const defaultAugmentOptions: AugmentOptions = {
  seed: 0,
  outHeight: 224,
  outWidth: 224,
  crop: "inception",
  inception: defaultInceptionCrop,
  vgg: defaultVggCrop,
  flipProbability: 0.5,
  colour: defaultColourAugment,
  audioNoise: 0.01,
  numClasses: 0,
};

/** Everything random about one clip's augmentation: a pure function of the key and the frame size. */
export interface AugmentParams {
  box: CropBox;
  flip: boolean;
  /** Undefined when the clip was not drawn for colour augmentation. */
  colour: ColourFactors | undefined;
}

/** Draws a clip's crop, flip and colour factors, each from its own keyed generator. */
export function drawAugmentation(
  key: { epoch: number; index: number },
  width: number,
  height: number,
  options: Partial<AugmentOptions> = {},
): AugmentParams {
  const opts = { ...defaultAugmentOptions, ...options };
  const rng = (purpose: string) => randomFor(opts.seed, key.epoch, key.index, purpose);
  const box =
    opts.crop === "inception"
      ? inceptionCropBox(width, height, rng("crop"), opts.inception)
      : opts.crop === "vgg"
        ? vggCropBox(width, height, Math.min(opts.outWidth, opts.outHeight), rng("crop"), opts.vgg)
        : centreCropBox(width, height, opts.outWidth, opts.outHeight);
  const flip = rng("flip").next() < opts.flipProbability;
  const colour = opts.colour ? drawColourFactors(rng("colour"), opts.colour) : undefined;
  return { box, flip, colour };
}

const noText = { textIds: new Int32Array(0), textMask: new Float32Array(0) };

/**
 * Applies drawn parameters to a clip: crop+resize+flip in one pass, colour, [-1, 1], audio noise. `params` may come
 * from `drawAugmentation` or from an evaluation view (no flip, no colour).
 */
export function applyAugmentation(
  clip: DecodedClip,
  params: AugmentParams,
  options: Partial<AugmentOptions> = {},
): Example {
  const opts = { ...defaultAugmentOptions, ...options };
  const { ref } = clip;
  // One fused kernel: crop + resize + flip + colour + [-1, 1] (two passes per output frame).
  const video = cropResizeColour(
    clip.frames,
    clip.numFrames,
    clip.height,
    clip.width,
    params.box,
    opts.outHeight,
    opts.outWidth,
    params.flip,
    params.colour,
    true,
  );
  const audio =
    opts.audioNoise > 0 && clip.audioMask > 0
      ? addGaussianNoise(
          clip.audio,
          randomFor(opts.seed, ref.epoch, ref.index, "audio-noise"),
          opts.audioNoise,
        )
      : clip.audio;
  const text = opts.text ? opts.text(ref) : noText;
  return {
    source: ref.source,
    id: ref.id,
    index: ref.index,
    epoch: ref.epoch,
    order: ref.order,
    video,
    videoShape: [clip.numFrames, opts.outHeight, opts.outWidth, 3],
    audio,
    audioMask: clip.audioMask,
    textIds: text.textIds,
    textMask: text.textMask,
    labels: opts.numClasses > 0 ? multiHot(ref.labels, opts.numClasses) : new Float32Array(0),
    padded: clip.paddedFrames > 0,
  };
}

/** The training transform: draw this clip's parameters, then apply them. */
export function augmentClip(clip: DecodedClip, options: Partial<AugmentOptions> = {}): Example {
  const params = drawAugmentation(clip.ref, clip.width, clip.height, options);
  return applyAugmentation(clip, params, options);
}
