/**
 * A still picture as a clip: the image datasets (ImageNet's layout, `--modality image`) feed the video backbone an
 * image repeated as every frame of the clip, as the paper does. FFmpeg's decoders see a JPEG as a video of one
 * frame at 25 fps, which no clip window fits, so pictures are decoded with sharp instead: EXIF orientation applied,
 * scaled so the short side is `shortSide` (as the video decoder scales), RGB, no sound (audio mask 0).
 */
import { extname } from "node:path";
import sharp from "sharp";
import { scaledSize } from "../core/geometry.js";
import type { ClipRef, DecodedClip } from "../core/records.js";
import { MediaError } from "../media/process.js";
import { clipSamples, type DecodeOptions } from "./decode-options.js";

/** File extensions read as still pictures. */
export const STILL_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".avif", ".tif", ".tiff"];

export function isStillImage(path: string): boolean {
  return STILL_EXTENSIONS.includes(extname(path).toLowerCase());
}

/** The picture at `ref.path` repeated as `opts.frames` frames. */
export async function decodeStill(
  ref: ClipRef,
  opts: Pick<DecodeOptions, "frames" | "fps" | "stride" | "sampleRate" | "shortSide">,
): Promise<DecodedClip> {
  let picture: { data: Buffer; info: { width: number; height: number } };
  try {
    const meta = await sharp(ref.path).metadata();
    // EXIF orientations 5-8 turn the picture a quarter: its displayed width is the stored height.
    const turned = (meta.orientation ?? 1) >= 5;
    const [w, h] = turned ? [meta.height ?? 0, meta.width ?? 0] : [meta.width ?? 0, meta.height ?? 0];
    const size = scaledSize(w, h, opts.shortSide);
    picture = await sharp(ref.path)
      .rotate()
      .resize(size.width, size.height, { fit: "fill" })
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new MediaError(
      `'${ref.path}' is not a readable picture (${(err as Error).message}): check or drop the file`,
      ref.path,
      "invalid",
    );
  }
  const { width, height } = picture.info;
  const frame = width * height * 3;
  const frames = new Uint8Array(opts.frames * frame);
  for (let f = 0; f < opts.frames; f++) frames.set(picture.data.subarray(0, frame), f * frame);
  return {
    ref,
    frames,
    numFrames: opts.frames,
    height,
    width,
    audio: new Float32Array(clipSamples(opts)),
    sampleRate: opts.sampleRate,
    audioMask: 0,
    paddedFrames: 0,
  };
}
