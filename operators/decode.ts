/**
 * Decode: one ClipRef window -> a DecodedClip (uint8 RGB frames + float32 mono audio), with one ffmpeg process.
 *
 * The process seeks fast (`-ss` before `-i`: jump to the keyframe before the window, then decode and drop up to the
 * exact instant, which is frame-accurate when transcoding), resamples any native or variable frame rate to a fixed
 * rate with the `fps` filter, turns the picture to its display orientation (ffmpeg's autorotate), scales it so the
 * short side is `shortSide`, and writes the frames as PPM images on stdout and the audio, resampled to 48 kHz mono
 * float32, on fd 3. PPM headers carry each frame's size, so no ffprobe run is needed in the common case.
 *
 * Both outputs are captured in temp files (pipeline/ffmpeg.ts `runMediaToolCaptured`, started by its small spawner
 * process) and read once, straight into the clip's own buffers: each frame's pixels land in place in one scattered
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
 *   stream turns into a counted skip; hanging decodes are killed at `timeoutMs`.
 */
import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { uninitialisedBytes, uninitialisedFloat32 } from "../pipeline/buffers.js";
import { type CapturedOutput, MediaError, runMediaToolCaptured } from "../pipeline/ffmpeg.js";
import type { LibavDecodeResult } from "../pipeline/libav.js";
import { LeftToFfmpeg, libavPool, libavStatus } from "../pipeline/libav-pool.js";
import { type MediaInfo, probe as probeFile } from "../pipeline/probe.js";
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
  /**
   * Decoder and filter-graph threads per ffmpeg process (0 = ffmpeg decides). One is best when running one process
   * per core.
   */
  threads: number;
  /** Run seed: the window of sample (epoch, index) comes from randomFor(seed, epoch, index, "window"). */
  seed: number;
  /**
   * Who decodes: "libav" (FFmpeg's libraries in worker threads of this process, pipeline/libav.ts: ~2 ms of CPU a
   * small clip), "process" (one ffmpeg process per clip, as below: ~8.5 ms, but a decoder crash cannot reach this
   * process), or "auto" (libav when node-av loads here).
   */
  decoder: "auto" | "libav" | "process";
  /**
   * Decoding threads of the libav decoder; 0 leaves one core to the thread that trains (one per core but one). The
   * process's pool grows to the most any caller asks for.
   */
  workers: number;
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
  decoder: "auto",
  workers: 0,
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
   * it costs an ffprobe run per file (`probeCached`); see bench/pipeline.ts for when that pays.
   */
  geometry?: (width: number, height: number) => FilterGeometry;
  /** How ffmpeg's outputs reach us (see `runMediaToolCaptured`); default: temp files where they work. */
  capture?: "file" | "pipe";
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
  // The filter graph's threads too: by default ffmpeg starts one per core, whose hand-offs cost a clip-sized run
  // ~20 context switches and ~2 ms of wall time for nothing.
  if (opts.threads > 0) args.push("-threads", String(opts.threads), "-filter_threads", String(opts.threads));
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
  // rgb24 whatever the source: a 10-bit one would otherwise come out as 16-bit PPM.
  args.push("-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1");
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
    // At most 32 characters: a header token is a short number, and spreading a long run of bytes into
    // fromCharCode's arguments overflows the stack.
    return String.fromCharCode(...data.subarray(begin, Math.min(pos, begin + 32)));
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

/**
 * A decode's output, already in the clip's own buffers: `frames` has room for the whole clip and holds the `got`
 * decoded frames at its start; `audio` has the clip's length and holds the first `audioSamples` decoded samples.
 * Both decoders give it.
 */
type RawDecode = LibavDecodeResult;

/**
 * The header of the first PPM image when it is exactly what ffmpeg writes ("P6 W H 255", one whitespace byte
 * after each token, no comments): frame size and header length. Anything else returns undefined, and the caller
 * takes the general parser (`parsePpmStream`), which also owns the error messages.
 */
function plainPpmHeader(
  head: Uint8Array,
): { width: number; height: number; headerBytes: number } | undefined {
  const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
  if (head.length < 3 || head[0] !== 0x50 || head[1] !== 0x36 || !isSpace(head[2])) return undefined;
  const values: number[] = [];
  let pos = 3;
  for (let t = 0; t < 3; t++) {
    let v = 0;
    const begin = pos;
    while (pos < head.length && head[pos] >= 0x30 && head[pos] <= 0x39 && pos - begin < 9) {
      v = v * 10 + head[pos] - 0x30;
      pos++;
    }
    if (pos === begin || pos >= head.length || !isSpace(head[pos])) return undefined;
    values.push(v);
    pos++;
  }
  const [width, height, maxval] = values;
  if (!(width > 0 && height > 0) || maxval !== 255) return undefined;
  return { width, height, headerBytes: pos };
}

/** The general path: all of the output in memory, parsed by `parsePpmStream`, frames copied into the clip. */
async function readPpmFramesSlow(out: CapturedOutput, frames: number, file: string): Promise<RawFrames> {
  const all = new Uint8Array(out.size);
  await out.readInto([all], 0);
  const ppm = parsePpmStream(all, file);
  const got = Math.min(ppm.frames.length, frames);
  const frameBytes = ppm.width * ppm.height * 3;
  const clip = new Uint8Array(got > 0 ? frames * frameBytes : 0);
  for (let i = 0; i < got; i++) clip.set(ppm.frames[i], i * frameBytes);
  return { frames: clip, got, width: ppm.width, height: ppm.height };
}

type RawFrames = Pick<RawDecode, "frames" | "got" | "width" | "height">;

/**
 * ffmpeg's PPM stream read straight into the clip's frame buffer: every frame's pixels go to their place in one
 * scattered read and the headers (all the same size) to a scratch buffer, checked against the first one. Each
 * pixel byte is copied once. An unusual stream (other headers, a size change, a cut-off frame) takes the general
 * parser instead, so the frames and errors are exactly those of `parsePpmStream`.
 */
async function readPpmFrames(out: CapturedOutput, frames: number, file: string): Promise<RawFrames> {
  if (out.size === 0) return { frames: new Uint8Array(0), got: 0, width: 0, height: 0 };
  const head = new Uint8Array(Math.min(out.size, 64));
  await out.readInto([head], 0);
  const first = plainPpmHeader(head);
  if (!first) return readPpmFramesSlow(out, frames, file);
  const { width, height, headerBytes } = first;
  const frameBytes = width * height * 3;
  const stride = headerBytes + frameBytes;
  const got = Math.floor(out.size / stride);
  if (got * stride !== out.size || got > frames) return readPpmFramesSlow(out, frames, file);
  // Frames past `got` are filled by looping (assembleClip), so every byte is written.
  const clip = uninitialisedBytes(frames * frameBytes);
  const headers = new Uint8Array(got * headerBytes);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < got; i++) {
    parts.push(
      headers.subarray(i * headerBytes, (i + 1) * headerBytes),
      clip.subarray(i * frameBytes, (i + 1) * frameBytes),
    );
  }
  if ((await out.readInto(parts, 0)) !== out.size) return readPpmFramesSlow(out, frames, file);
  for (let i = 1; i < got; i++) {
    for (let b = 0; b < headerBytes; b++) {
      if (headers[i * headerBytes + b] !== head[b]) return readPpmFramesSlow(out, frames, file);
    }
  }
  return { frames: clip, got, width, height };
}

/** The f32le audio output read straight into a clip-length buffer (at most `samples` samples of it). */
async function readAudio(
  out: CapturedOutput,
  samples: number,
  file: string,
): Promise<{ audio: Float32Array; audioSamples: number }> {
  // assembleClip writes the samples past `audioSamples` (zeros or the loop).
  const audio = uninitialisedFloat32(samples);
  const audioSamples = Math.min(out.size >> 2, samples);
  if (audioSamples > 0) {
    const bytes = audioSamples * 4;
    const got = await out.readInto([new Uint8Array(audio.buffer, 0, bytes)], 0);
    // The buffer is uninitialised: a short read must not leave old memory in the clip.
    if (got !== bytes)
      throw new MediaError(`audio output ended early (${got} of ${bytes} bytes)`, file, "invalid");
  }
  return { audio, audioSamples };
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
      return await libavPool(opts.workers || undefined).decode(job, {
        timeoutMs: opts.timeoutMs,
        signal: call.signal,
      });
    } catch (err) {
      if (!(err instanceof LeftToFfmpeg)) throw err;
      // On to the ffmpeg process below: the same frames where both decode, and its own handling of the rest.
    }
  }
  const run = (withAudio: boolean): Promise<RawDecode> =>
    runMediaToolCaptured(
      "ffmpeg",
      ffmpegDecodeArgs(file, start, opts, withAudio, geometry),
      1,
      { file, timeoutMs: opts.timeoutMs, signal: call.signal, capture: call.capture },
      async ([video, audio]) => {
        const frames = await readPpmFrames(video, opts.frames, file);
        if (!withAudio) return { ...frames, audio: undefined, audioSamples: 0 };
        return { ...frames, ...(await readAudio(audio, clipSamples(opts), file)) };
      },
    );
  try {
    return await run(true);
  } catch (err) {
    if (isMissingAudio(err)) return run(false);
    throw err;
  }
}

/** Completes the clip in place: loops the decoded frames and audio with the same period (see the file comment). */
function assembleClip(
  ref: ClipRef,
  raw: RawDecode,
  opts: DecodeOptions,
  start: number,
): Omit<DecodedClip, "ref"> & { ref: ClipRef } {
  const { frames, got, width, height } = raw;
  const frameBytes = width * height * 3;
  for (let i = got; i < opts.frames; i++) {
    const from = (i % got) * frameBytes;
    frames.copyWithin(i * frameBytes, from, from + frameBytes);
  }
  const samples = clipSamples(opts);
  const audio = raw.audio ?? new Float32Array(samples);
  if (raw.audio) {
    // Period of the looped picture in samples; the whole clip when nothing was looped.
    const period =
      got < opts.frames ? Math.round((got * opts.sampleRate) / effectiveFrameRate(opts)) : samples;
    const n = Math.min(raw.audioSamples, period);
    for (let j = 0; j < n; j++) {
      const v = audio[j];
      audio[j] = v > 1 ? 1 : Math.max(v, -1);
    }
    if (period > 0) {
      audio.fill(0, n, Math.min(period, samples));
      for (let j = period; j < samples; j += period) audio.copyWithin(j, 0, Math.min(period, samples - j));
    } else audio.fill(0);
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
    paddedFrames: Math.max(0, opts.frames - got),
  };
}

/** Probe results by path, checked against the file's size and mtime; the oldest entries go past `PROBE_CACHE_SIZE`. */
const probeCache = new Map<string, { stamp: string; info: MediaInfo }>();
const PROBE_CACHE_SIZE = 4096;

/** `probe`, remembered per file while its size and modification time stay the same (a stat instead of ffprobe). */
export async function probeCached(
  file: string,
  opts: { timeoutMs?: number; signal?: AbortSignal; inProcess?: boolean; stats?: Stats } = {},
): Promise<MediaInfo> {
  const probe = opts.inProcess
    ? (f: string) => libavPool().probe(f, opts)
    : (f: string) => probeFile(f, opts);
  let stamp: string;
  try {
    const st = opts.stats ?? (await stat(file));
    stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return probe(file); // its own error names the file and the reason
  }
  const known = probeCache.get(file);
  if (known && known.stamp === stamp) {
    probeCache.delete(file); // most recently used goes last
    probeCache.set(file, known);
    return known.info;
  }
  const info = await probe(file);
  probeCache.set(file, { stamp, info });
  if (probeCache.size > PROBE_CACHE_SIZE) probeCache.delete(probeCache.keys().next().value as string);
  return info;
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
  // libav reads regular files only: opening a FIFO or a device can block its thread for good, where a hung ffmpeg
  // process can be killed. Anything else goes to the process decoder.
  const libav = await decodesInProcess(opts.decoder);
  const stats = libav ? await stat(ref.path).catch(() => undefined) : undefined;
  const inProcess = libav && (stats === undefined || stats.isFile());
  const probeOpts = { timeoutMs: opts.timeoutMs, signal: call.signal, inProcess, stats };
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
