/**
 * A clip cut from a shard row, and its decode to a DecodedClip: the part of datasets/parquet.ts that runs in the
 * augmentation worker threads, kept free of Parquet and Arrow so a worker starts fast.
 */
import sharp from "sharp";
import type { ClipRef, DecodedClip } from "../pipeline/records.js";

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

/** JPEG -> RGB bytes of the expected size; a mismatch is an error naming the clip. */
async function decodeJpeg(jpeg: Uint8Array, cut: ClipCut): Promise<Buffer> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  if (info.width !== cut.width || info.height !== cut.height || info.channels !== 3) {
    throw new Error(
      `${cut.ref.source}:${cut.ref.id} (${cut.ref.path}): a stored frame is ${info.width}x${info.height}x` +
        `${info.channels}, the row says ${cut.width}x${cut.height}x3: the shard is damaged; prepare it again`,
    );
  }
  return data;
}

/** A cut -> the DecodedClip the raw path would give: JPEGs decoded (in parallel), audio to float32. */
export async function decodeCut(cut: ClipCut): Promise<DecodedClip> {
  const frameBytes = cut.width * cut.height * 3;
  const frames = new Uint8Array(cut.jpegs.length * frameBytes);
  // Each distinct stored frame is decoded once, even when a short row loops it.
  const distinct = new Map<Uint8Array, Promise<Buffer>>();
  const decoded = await Promise.all(
    cut.jpegs.map((j) => {
      const known = distinct.get(j);
      if (known) return known;
      const p = decodeJpeg(j, cut);
      distinct.set(j, p);
      return p;
    }),
  );
  for (const [i, rgb] of decoded.entries()) frames.set(rgb, i * frameBytes);
  const samples = cut.audio?.length ?? Math.floor(cut.sampleRate * (cut.ref.end - cut.ref.start) + 1e-6);
  const audio = new Float32Array(samples);
  if (cut.audio) for (let j = 0; j < samples; j++) audio[j] = cut.audio[j] / 32767;
  return {
    ref: cut.ref,
    frames,
    numFrames: cut.jpegs.length,
    height: cut.height,
    width: cut.width,
    audio,
    sampleRate: cut.sampleRate,
    audioMask: cut.audio ? 1 : 0,
    paddedFrames: cut.paddedFrames,
  };
}
