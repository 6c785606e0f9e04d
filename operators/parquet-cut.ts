/**
 * A clip cut from a shard row, and its decode to a DecodedClip: the part of pipeline/parquet-examples.ts that runs in the
 * augmentation worker threads, kept free of Parquet and Arrow so a worker starts fast.
 */
import sharp from "sharp";
import { uninitialisedBytes } from "../core/buffers.js";
import type { CropBox } from "../core/geometry.js";
import type { ClipRef, DecodedClip, Example } from "../core/records.js";
import { decodeJpegRegionNative, useNativeJpeg } from "../native/kernels.js";
import { type AugmentOptions, applyAugmentation, drawAugmentation } from "./augment.js";

/** A clip cut from a row: its JPEG frames and audio, copied out of the row group (small, ready to shuffle). */
export interface ClipCut {
  ref: ClipRef;
  jpegs: Uint8Array[];
  width: number;
  height: number;
  /** int16 audio of the clip, already looped / padded to the clip length; undefined when the row has none. */
  audio: Int16Array | undefined;
  sampleRate: number;
  paddedFrames: number;
  /** Stored token ids of `ref.captions` (in that order) when the shard was prepared with a vocabulary. */
  tokenIds?: Int32Array[];
}

/** Names the clip in a frame's decode error. */
function frameError(cut: ClipCut, message: string): Error {
  return new Error(
    `${cut.ref.source}:${cut.ref.id} (${cut.ref.path}): ${message}: the shard is damaged; prepare it again`,
  );
}

/** One stored frame's `box` region -> RGB bytes in `out` at `offset`, with libjpeg (native) or sharp. */
async function decodeFrameInto(
  jpeg: Uint8Array,
  cut: ClipCut,
  box: CropBox,
  out: Uint8Array,
  offset: number,
): Promise<void> {
  if (useNativeJpeg) {
    try {
      decodeJpegRegionNative(jpeg, cut.width, cut.height, box, out, offset);
    } catch (err) {
      throw frameError(cut, (err as Error).message);
    }
    return;
  }
  const image = sharp(jpeg);
  const whole = box.width === cut.width && box.height === cut.height;
  const { data, info } = await (whole
    ? image
    : image.extract({ left: box.x, top: box.y, width: box.width, height: box.height })
  )
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== box.width || info.height !== box.height || info.channels !== 3) {
    throw frameError(
      cut,
      `a stored frame decoded to ${info.width}x${info.height}x${info.channels}, not the row's size`,
    );
  }
  out.set(data, offset);
}

/**
 * A cut -> the DecodedClip the raw path would give: JPEGs decoded (in parallel with sharp; in this thread with
 * libjpeg), audio to float32. With `region`, only that part of each frame is decoded and the clip is that size.
 */
export async function decodeCut(cut: ClipCut, region?: CropBox): Promise<DecodedClip> {
  const box = region ?? { x: 0, y: 0, width: cut.width, height: cut.height };
  const frameBytes = box.width * box.height * 3;
  const frames = uninitialisedBytes(cut.jpegs.length * frameBytes);
  // Each distinct stored frame is decoded once, even when a short row loops it; repeats are copied after.
  const firstAt = new Map<Uint8Array, number>();
  const decodes: Promise<void>[] = [];
  cut.jpegs.forEach((jpeg, i) => {
    if (firstAt.has(jpeg)) return;
    firstAt.set(jpeg, i);
    decodes.push(decodeFrameInto(jpeg, cut, box, frames, i * frameBytes));
  });
  await Promise.all(decodes);
  cut.jpegs.forEach((jpeg, i) => {
    const first = firstAt.get(jpeg) ?? i;
    if (first !== i) frames.copyWithin(i * frameBytes, first * frameBytes, (first + 1) * frameBytes);
  });
  const samples = cut.audio?.length ?? Math.floor(cut.sampleRate * (cut.ref.end - cut.ref.start) + 1e-6);
  const audio = new Float32Array(samples);
  if (cut.audio) for (let j = 0; j < samples; j++) audio[j] = cut.audio[j] / 32767;
  return {
    ref: cut.ref,
    frames,
    numFrames: cut.jpegs.length,
    height: box.height,
    width: box.width,
    audio,
    sampleRate: cut.sampleRate,
    audioMask: cut.audio ? 1 : 0,
    paddedFrames: cut.paddedFrames,
  };
}

/**
 * The raw path's training augmentation of a cut (operators/augment.ts `augmentClip`), decoding only the region the
 * drawn crop covers: the draws depend only on the sample's key and the frame size, which the row stores, so they
 * come first. The same Example as decoding whole frames and then augmenting (tested).
 */
export async function augmentCut(cut: ClipCut, augment: Partial<AugmentOptions>): Promise<Example> {
  const params = drawAugmentation(cut.ref, cut.width, cut.height, augment);
  const clip = await decodeCut(cut, params.box);
  const inRegion = { x: 0, y: 0, width: params.box.width, height: params.box.height };
  return applyAugmentation(clip, { ...params, box: inRegion }, augment);
}
