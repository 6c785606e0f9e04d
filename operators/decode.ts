/**
 * Decode: one ClipRef window -> a DecodedClip (uint8 RGB frames + float32 mono audio), with one ffmpeg process.
 *
 * The process seeks fast (`-ss` before `-i`: jump to the keyframe before the window, then decode and drop up to the
 * exact instant, which is frame-accurate when transcoding), resamples any native or variable frame rate to a fixed
 * rate with the `fps` filter, turns the picture to its display orientation (ffmpeg's autorotate), scales it so the
 * short side is `shortSide`, and writes the frames as PPM images on stdout and the audio, resampled to 48 kHz mono
 * float32, on fd 3. PPM headers carry each frame's size, so no ffprobe run is needed in the common case.
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
 *   stream turns into a counted skip; hanging decodes are killed at `timeoutMs`.
 */
import { MediaError, runMediaToolOutputs } from "../pipeline/ffmpeg.js";
import { probe } from "../pipeline/probe.js";
import { type Random, randomFor } from "../pipeline/random.js";
import type { ClipRef, DecodedClip } from "../pipeline/records.js";

export interface DecodeOptions {
  /** Frames per clip (reference: 32). */
  frames: number;
  /** Frame rate the video is resampled to before striding (reference: 10). */
  fps: number;
  /** Keep every `stride`-th resampled frame: fps 25 with stride 2 samples 12.5 frames a second. */
  stride: number;
  /** Short side of the decoded frames in pixels (the crop works on these); 0 keeps the display size. */
  shortSide: number;
  /** Audio sample rate in Hz (reference: 48,000). */
  sampleRate: number;
  /** Where the clip goes inside the ref's [start, end]: a seeded random place (training), its start, or centre. */
  window: "random" | "start" | "centre";
  /** Kill a decode that runs longer than this. */
  timeoutMs: number;
  /** Decoder threads per ffmpeg process (0 = ffmpeg decides). One per process is best when running one per core. */
  threads: number;
  /** Run seed: the window of sample (epoch, index) comes from randomFor(seed, epoch, index, "window"). */
  seed: number;
}

export const defaultDecodeOptions: DecodeOptions = {
  frames: 32,
  fps: 10,
  stride: 1,
  shortSide: 256,
  sampleRate: 48_000,
  window: "random",
  timeoutMs: 30_000,
  threads: 1,
  seed: 0,
};

/** A crop, resize and flip that ffmpeg applies in its filter graph instead of the typed-array kernels. */
export interface FilterGeometry {
  /** Crop box in pixels of the frame scaled to `shortSide`. */
  box: { x: number; y: number; width: number; height: number };
  outWidth: number;
  outHeight: number;
  flip: boolean;
}

export interface DecodeCall {
  signal?: AbortSignal;
  /**
   * Optional: given the scaled frame size, the geometry ffmpeg should apply. Needs the size before decoding, so
   * it costs an ffprobe run; see bench/pipeline.ts for when that pays.
   */
  geometry?: (width: number, height: number) => FilterGeometry;
}

/** Sampled frames per second after striding. */
export function effectiveFrameRate(opts: Pick<DecodeOptions, "fps" | "stride">): number {
  return opts.fps / opts.stride;
}

/** Length of the decoded window in seconds: 32 frames at 10 fps = 3.2 s. */
export function clipSeconds(opts: Pick<DecodeOptions, "frames" | "fps" | "stride">): number {
  return (opts.frames * opts.stride) / opts.fps;
}

/** Audio samples per clip: int(48000 * 32 / 10) = 153,600. */
export function clipSamples(opts: Pick<DecodeOptions, "frames" | "fps" | "stride" | "sampleRate">): number {
  return Math.floor((opts.sampleRate * opts.frames * opts.stride) / opts.fps + 1e-9);
}

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

/** Scales to a short side of `shortSide`, computed by ffmpeg from the display size (after autorotate). */
function scaleFilter(shortSide: number): string {
  if (shortSide <= 0) return "";
  const s = shortSide;
  return `scale=w='if(lte(iw,ih),${s},round(iw*${s}/ih))':h='if(lte(iw,ih),round(ih*${s}/iw),${s})':flags=bilinear`;
}

/** The size `scaleFilter` produces for a display size. */
export function scaledSize(
  width: number,
  height: number,
  shortSide: number,
): { width: number; height: number } {
  if (shortSide <= 0) return { width, height };
  return width <= height
    ? { width: shortSide, height: Math.round((height * shortSide) / width) }
    : { width: Math.round((width * shortSide) / height), height: shortSide };
}

export function ffmpegDecodeArgs(
  file: string,
  start: number,
  opts: DecodeOptions,
  withAudio: boolean,
  geometry?: FilterGeometry,
): string[] {
  const seconds = clipSeconds(opts);
  // Output frame k is the frame on screen at start + k / rate: round=up maps each input frame to the first slot at
  // or after its timestamp and the latest one wins ("near" can take one up to half a period late), and
  // start_time=0 fills slots before the first frame (files whose video starts a little after 0, e.g. behind AAC
  // priming) with that frame instead of shifting the whole clip by one slot.
  const filters = [`fps=fps=${opts.fps}/${opts.stride}:start_time=0:round=up`, scaleFilter(opts.shortSide)];
  if (geometry) {
    const { box, outWidth, outHeight, flip } = geometry;
    filters.push(
      `crop=${box.width}:${box.height}:${box.x}:${box.y}`,
      `scale=${outWidth}:${outHeight}:flags=bilinear`,
    );
    if (flip) filters.push("hflip");
  }
  const args = ["-nostdin", "-hide_banner", "-loglevel", "error"];
  if (opts.threads > 0) args.push("-threads", String(opts.threads));
  // Input options: seek before opening (fast), and read a little past the window so the last frame is complete.
  args.push("-ss", start.toFixed(6), "-t", (seconds + 2 / effectiveFrameRate(opts)).toFixed(6), "-i", file);
  args.push(
    "-map",
    "0:v:0",
    "-vf",
    filters.filter((f) => f !== "").join(","),
    "-frames:v",
    String(opts.frames),
  );
  args.push("-f", "image2pipe", "-c:v", "ppm", "pipe:1");
  if (withAudio) {
    args.push("-map", "0:a:0", "-ac", "1", "-ar", String(opts.sampleRate), "-t", seconds.toFixed(6));
    args.push("-c:a", "pcm_f32le", "-f", "f32le", "pipe:3");
  }
  return args;
}

/** Frames parsed from a stream of binary PPM (P6, maxval 255) images. */
export interface PpmFrames {
  frames: Uint8Array[];
  width: number;
  height: number;
}

/** Splits ffmpeg's image2pipe PPM output into frames; every frame must have the same size. */
export function parsePpmStream(data: Uint8Array, file: string): PpmFrames {
  const frames: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  let pos = 0;
  const readToken = (): string => {
    // Skip whitespace and comments, then read up to the next whitespace.
    while (pos < data.length) {
      const c = data[pos];
      if (c === 0x23) while (pos < data.length && data[pos] !== 0x0a) pos++;
      else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
    const begin = pos;
    while (
      pos < data.length &&
      !(data[pos] === 0x20 || data[pos] === 0x0a || data[pos] === 0x0d || data[pos] === 0x09)
    )
      pos++;
    return String.fromCharCode(...data.subarray(begin, pos));
  };
  while (pos < data.length) {
    const magic = readToken();
    if (magic === "") break;
    const w = Number(readToken());
    const h = Number(readToken());
    const maxval = Number(readToken());
    pos += 1; // the single whitespace byte after maxval
    if (magic !== "P6" || !(w > 0) || !(h > 0) || maxval !== 255) {
      throw new MediaError(
        `decode of '${file}': unexpected frame header '${magic} ${w} ${h} ${maxval}'`,
        file,
        "failed",
      );
    }
    if (frames.length > 0 && (w !== width || h !== height)) {
      throw new MediaError(
        `decode of '${file}': frame size changed mid-clip from ${width}x${height} to ${w}x${h}`,
        file,
        "invalid",
      );
    }
    width = w;
    height = h;
    const bytes = w * h * 3;
    if (pos + bytes > data.length) break; // a frame cut short when ffmpeg died: drop it
    frames.push(data.subarray(pos, pos + bytes));
    pos += bytes;
  }
  return { frames, width, height };
}

/** ffmpeg refuses an output with no streams when `-map 0:a:0` finds no audio track. */
function isMissingAudio(err: unknown): boolean {
  return err instanceof MediaError && /Stream map '0:a:0' matches no streams/i.test(err.stderr);
}

interface RawDecode {
  ppm: PpmFrames;
  audio: Float32Array | undefined;
}

async function runDecode(
  file: string,
  start: number,
  opts: DecodeOptions,
  call: DecodeCall,
  geometry: FilterGeometry | undefined,
): Promise<RawDecode> {
  const run = async (withAudio: boolean): Promise<RawDecode> => {
    const out = await runMediaToolOutputs(
      "ffmpeg",
      ffmpegDecodeArgs(file, start, opts, withAudio, geometry),
      1,
      {
        file,
        timeoutMs: opts.timeoutMs,
        signal: call.signal,
      },
    );
    const audioBytes = out.pipes[0];
    // Copy into an aligned buffer: Buffer pools give arbitrary byte offsets, Float32Array needs multiples of 4.
    const audio = withAudio
      ? new Float32Array(new Uint8Array(audioBytes).buffer, 0, audioBytes.length >> 2)
      : undefined;
    return { ppm: parsePpmStream(out.stdout, file), audio };
  };
  try {
    return await run(true);
  } catch (err) {
    if (isMissingAudio(err)) return run(false);
    throw err;
  }
}

/** Fills `frames` by looping the decoded ones and audio with the same period (see the file comment). */
function assembleClip(
  ref: ClipRef,
  raw: RawDecode,
  opts: DecodeOptions,
  start: number,
): Omit<DecodedClip, "ref"> & { ref: ClipRef } {
  const { frames: got, width, height } = raw.ppm;
  const frameBytes = width * height * 3;
  const frames = new Uint8Array(opts.frames * frameBytes);
  for (let i = 0; i < opts.frames; i++) frames.set(got[i % got.length], i * frameBytes);
  const samples = clipSamples(opts);
  const audio = new Float32Array(samples);
  if (raw.audio) {
    const src = raw.audio;
    // Period of the looped picture in samples; the whole clip when nothing was looped.
    const period =
      got.length < opts.frames
        ? Math.round((got.length * opts.sampleRate) / effectiveFrameRate(opts))
        : samples;
    const n = Math.min(src.length, period);
    for (let j = 0; j < samples; j++) {
      const k = j % period;
      const v = k < n ? src[k] : 0;
      audio[j] = v > 1 ? 1 : v < -1 ? -1 : v;
    }
  }
  return {
    ref: { ...ref, start, end: start + clipSeconds(opts) },
    frames,
    numFrames: opts.frames,
    height,
    width,
    audio,
    sampleRate: opts.sampleRate,
    audioMask: raw.audio ? 1 : 0,
    paddedFrames: Math.max(0, opts.frames - got.length),
  };
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
  const seconds = clipSeconds(opts);
  const windowRng = () => randomFor(opts.seed, ref.epoch, ref.index, "window");
  let duration = ref.duration;
  let geometry: FilterGeometry | undefined;
  if (call.geometry) {
    // The filter-graph crop needs the frame size before decoding.
    const info = await probe(ref.path, { timeoutMs: opts.timeoutMs, signal: call.signal });
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
  let raw = await runDecode(ref.path, start, opts, call, geometry);
  if (raw.ppm.frames.length < opts.frames && start > 0) {
    // The window ran past the end of the file (its length was not known): move it back and decode again.
    const known =
      duration ?? (await probe(ref.path, { timeoutMs: opts.timeoutMs, signal: call.signal })).duration;
    const moved = chooseWindowStart(ref, seconds, opts.window, windowRng(), known);
    if (moved < start - 1e-6) {
      start = moved;
      raw = await runDecode(ref.path, start, opts, call, geometry);
    }
  }
  if (raw.ppm.frames.length === 0) {
    throw new MediaError(
      `decode of '${ref.path}' at ${start.toFixed(3)} s gave no video frames (no video stream, or the file ends ` +
        "before the window): check the file with 'vatt probe'",
      ref.path,
      "invalid",
    );
  }
  return assembleClip(ref, raw, opts, start);
}
