/**
 * Decode: one ClipRef window -> a DecodedClip (uint8 RGB frames + float32 mono audio), with one ffmpeg process.
 *
 * The process seeks fast (`-ss` before `-i`: jump to the keyframe before the window, then decode and drop up to the
 * exact instant, which is frame-accurate when transcoding), resamples any native or variable frame rate to a fixed
 * rate with the `fps` filter, turns the picture to its display orientation (ffmpeg's autorotate), scales it so the
 * short side is `shortSide`, and writes the frames as PPM images on stdout and the audio, resampled to 48 kHz mono
 * float32, on fd 3. PPM headers carry each frame's size, so no ffprobe run is needed in the common case.
 *
 * Both outputs are captured in temp files (media/capture.ts `runMediaToolCaptured`, started by its small spawner
 * process when ours is large) and read once, straight into the clip's own buffers: each frame's pixels land in place in one scattered
 * read, headers aside. Against draining pipes (64 KB chunks, concatenation, a parse copy) that took the decode's
 * Node CPU from ~27 to ~6 ms per 32x455x256 clip (bench/pipeline.ts).
 *
 * Edge cases, decided here once:
 * - No audio track: the audio output is dropped and the clip gets zeros with `audioMask` 0.
 * - A window that runs past the end of the file: the file's duration is probed once and the window is moved back
 *   so it ends at the end of the file.
 * - A video shorter than the window: frames are LOOPED (frame i = frame i mod n) and so is the audio, with the
 *   same period, so sound stays in sync with the picture; `paddedFrames` says how many frames were repeated.
 *   Looping keeps motion statistics natural, which zero padding would not (the model never sees black frames).
 * - Audio shorter than the picture (within a clip): zero-padded at the end.
 * - Corrupt, truncated, missing or hanging files: a MediaError (kind "invalid", "missing", "timeout", ...) that the
 *   stream turns into a counted skip (`decodeSkipReason`); hanging decodes are killed at `timeoutMs`.
 * - A file that crashes the in-process decoder (a segfault in libav): its worker process dies, the clip is tried
 *   once more in a fresh one, then fails with kind "crashed", skipped as "crashed-decoder" (media/libav-pool.ts).
 */
import { stat } from "node:fs/promises";
import { type FilterGeometry, scaledSize } from "../core/geometry.js";
import { type Random, randomFor } from "../core/random.js";
import type { ClipRef, DecodedClip } from "../core/records.js";
import { LeftToFfmpeg, libavPool, libavStatus } from "../media/libav-pool.js";
import { probeCached } from "../media/probe-cache.js";
import { MediaError } from "../media/process.js";
import { decodeWithFfmpeg } from "./decode-ffmpeg.js";
import { assembleClip, type RawDecode } from "./decode-loop.js";
import {
  clipSamples,
  clipSeconds,
  type DecodeCall,
  type DecodeOptions,
  defaultDecodeOptions,
  effectiveFrameRate,
} from "./decode-options.js";
import { decodeStill, isStillImage } from "./decode-still.js";

// The operator's face: its options and clip arithmetic live in decode-options.ts, the ffmpeg process decoder in
// decode-ffmpeg.ts, the looping of short clips in decode-loop.ts.
export {
  clipSamples,
  clipSeconds,
  type DecodeCall,
  type DecodeOptions,
  defaultDecodeOptions,
  effectiveFrameRate,
} from "./decode-options.js";

/**
 * Where the clip starts, in seconds. The ref window is [ref.start, min(ref.end, duration)]; a clip that fits is
 * placed in it (seeded-uniformly, at its start, or centred); a window shorter than the clip is widened around its
 * centre, staying inside [0, duration].
 */
export function chooseWindowStart(
  ref: Pick<ClipRef, "start" | "end">,
  seconds: number,
  mode: DecodeOptions["window"],
  rng: Random,
  duration = Number.POSITIVE_INFINITY,
): number {
  const u = rng.next(); // drawn whatever the mode, so the stream of draws does not depend on it
  const lo = Math.max(0, ref.start);
  const hi = Math.min(ref.end, duration);
  const room = hi - lo - seconds;
  if (room >= 0) {
    if (mode === "start") return lo;
    if (mode === "centre") return lo + room / 2;
    return lo + u * room;
  }
  const centred = (lo + Math.max(lo, hi)) / 2 - seconds / 2;
  return Math.max(0, Math.min(centred, duration - seconds));
}

/**
 * The skip a failed decode is counted as: its reason ("crashed-decoder" for a file that crashed the decoder, else
 * the MediaError's kind) and what to do about it.
 */
export function decodeSkipReason(err: MediaError): { reason: string; advice: string } {
  if (err.kind === "crashed") {
    return {
      reason: "crashed-decoder",
      advice:
        "the file crashed the decoder: drop it from the dataset (or re-encode it; 'vatt probe' may read it fine)",
    };
  }
  if (err.kind === "timeout")
    return { reason: "timeout", advice: "raise decode.timeoutMs if the files are just slow" };
  // Some messages already say to probe the file (the no-frames / no-audio ones, also shown outside a stream):
  // the advice then adds only the rest, not the same words twice.
  return {
    reason: err.kind,
    advice: err.message.includes("'vatt probe'")
      ? "or drop it from the dataset"
      : "check the file with 'vatt probe', or drop it from the dataset",
  };
}

/**
 * Whether clips are decoded in this process: always for "libav" (a MediaError when node-av does not load), when
 * node-av loads for "auto".
 */
export async function decodesInProcess(decoder: DecodeOptions["decoder"]): Promise<boolean> {
  if (decoder === "process") return false;
  const status = await libavStatus();
  if (!status.available && decoder === "libav") {
    throw new MediaError(
      `decoder 'libav' cannot run: ${status.reason}; set data.decoder to 'process'`,
      undefined,
      "spawn",
    );
  }
  return status.available;
}

/** One decode of the window at `start`: in this process (libav threads) when it can, else by an ffmpeg process. */
async function runDecode(
  file: string,
  start: number,
  opts: DecodeOptions,
  call: DecodeCall,
  geometry: FilterGeometry | undefined,
  inProcess: boolean,
): Promise<RawDecode> {
  if (inProcess) {
    const job = {
      file,
      start,
      frames: opts.frames,
      rate: effectiveFrameRate(opts),
      seconds: clipSeconds(opts),
      sampleRate: opts.sampleRate,
      samples: clipSamples(opts),
      shortSide: opts.shortSide,
      geometry,
    };
    try {
      return await libavPool(opts.workers || undefined, opts.isolation).decode(job, {
        timeoutMs: opts.timeoutMs,
        signal: call.signal,
      });
    } catch (err) {
      if (!(err instanceof LeftToFfmpeg)) throw err;
      // On to the ffmpeg process below: the same frames where both decode, and its own handling of the rest.
    }
  }
  return decodeWithFfmpeg(file, start, opts, call, geometry);
}

/**
 * Decodes the clip of `ref`. The returned clip's `ref` has `start`/`end` narrowed to the decoded window (so later
 * stages, e.g. caption choice, see exactly what was decoded). Throws MediaError on a bad file or a timeout.
 */
export async function decodeClip(
  ref: ClipRef,
  options: Partial<DecodeOptions> = {},
  call: DecodeCall = {},
): Promise<DecodedClip> {
  const opts = { ...defaultDecodeOptions, ...options };
  if (isStillImage(ref.path)) return decodeStill(ref, opts);
  const seconds = clipSeconds(opts);
  const windowRng = () => randomFor(opts.seed, ref.epoch, ref.index, "window");
  // libav reads regular files only: opening a FIFO or a device can block its thread for good, where a hung ffmpeg
  // process can be killed. Anything else goes to the process decoder.
  const libav = await decodesInProcess(opts.decoder);
  const stats = libav ? await stat(ref.path).catch(() => undefined) : undefined;
  const inProcess = libav && (stats === undefined || stats.isFile());
  const probeOpts = {
    timeoutMs: opts.timeoutMs,
    signal: call.signal,
    inProcess,
    isolation: opts.isolation,
    stats,
  };
  let duration = ref.duration;
  let geometry: FilterGeometry | undefined;
  if (call.geometry) {
    // The filter-graph crop needs the frame size before decoding: probed once per file (and change of it).
    const info = await probeCached(ref.path, probeOpts);
    const turned = info.rotation === 90 || info.rotation === 270;
    const size = scaledSize(
      turned ? info.height : info.width,
      turned ? info.width : info.height,
      opts.shortSide,
    );
    geometry = call.geometry(size.width, size.height);
    duration = duration ?? info.duration;
  }
  let start = chooseWindowStart(ref, seconds, opts.window, windowRng(), duration);
  let raw = await runDecode(ref.path, start, opts, call, geometry, inProcess);
  if (raw.got < opts.frames && start > 0) {
    // The window ran past the end of the file (its length was not known): move it back and decode again.
    const known = duration ?? (await probeCached(ref.path, probeOpts)).duration;
    const moved = chooseWindowStart(ref, seconds, opts.window, windowRng(), known);
    if (moved < start - 1e-6) {
      start = moved;
      raw = await runDecode(ref.path, start, opts, call, geometry, inProcess);
    }
  }
  if (raw.got === 0) {
    throw new MediaError(
      `decode of '${ref.path}' at ${start.toFixed(3)} s gave no video frames (no video stream, or the file ends ` +
        "before the window): check the file with 'vatt probe'",
      ref.path,
      "invalid",
    );
  }
  return assembleClip(ref, raw, opts, start);
}
