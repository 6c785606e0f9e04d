/**
 * `vatt prepare`'s decode: one media span -> one shard row (datasets/parquet-schema.ts), decoded exactly once.
 *
 * Two ffmpeg processes per span, both streamed so a long video is never held raw in memory:
 *   video: fps filter to the stored rate (10), scaled so the short side is `shortSide` (to an exact size computed
 *          here, so the raw frame size is known before the first byte), rgb24 frames on stdout, each JPEG-encoded
 *          by sharp as it arrives (a few encodes in flight, results kept in order);
 *   audio: mono, resampled to 48 kHz, f32le on stdout, converted to int16 in 1 s chunks.
 * The row holds the JPEG frames and the int16 audio: about 15 KB a frame at 256p and 96 KB a second of audio.
 * A span the file cannot give (no video stream, nothing decoded) is a MediaError, which the caller counts as a skip.
 */
import sharp from "sharp";
import { scaledSize } from "../core/geometry.js";
import type { Caption } from "../core/records.js";
import type { PreparedRow } from "../datasets/parquet-schema.js";
import { probe } from "../media/probe.js";
import { MediaError, streamMediaTool } from "../media/process.js";
import { tokenize, type Vocabulary } from "../operators/tokenize.js";

/** What to decode: a whole file (no start/end) or a span of it, with the dataset's text and labels. */
export interface SpanItem {
  source: string;
  id: string;
  /** Media file to read. */
  path: string;
  /** Path stored in the row (e.g. relative to the dataset folder); default `path`. */
  storedPath?: string;
  /** Span in seconds of the file; undefined = from the start / to the end of the file. */
  start?: number;
  end?: number;
  captions: Caption[];
  labels: number[];
}

export interface SpanDecodeOptions {
  /** Stored frame rate (default 10, VATT's rate). */
  fps: number;
  /** Short side of the stored frames in pixels (default 256); 0 keeps the display size. */
  shortSide: number;
  /** Audio rate in Hz (default 48,000). */
  sampleRate: number;
  /** JPEG quality 1-100 (default 90). */
  jpegQuality: number;
  /** ffmpeg time limit: this much plus one second per second of span (default 60 s). */
  timeoutMs: number;
  /** JPEG encodes in flight per span (default 4). */
  encodeAhead: number;
  /** Tokenizes each caption into 16 ids when given. */
  vocab?: Vocabulary;
  signal?: AbortSignal;
}

export const defaultSpanDecodeOptions: SpanDecodeOptions = {
  fps: 10,
  shortSide: 256,
  sampleRate: 48_000,
  jpegQuality: 90,
  timeoutMs: 60_000,
  encodeAhead: 4,
};

/** float32 in [-1, 1] -> int16 (clipped, rounded): the stored audio type. */
export function toInt16(samples: Float32Array, out = new Int16Array(samples.length)): Int16Array {
  for (let i = 0; i < samples.length; i++) {
    out[i] = Math.round(Math.min(1, Math.max(-1, samples[i])) * 32767);
  }
  return out;
}

/** `-ss`/`-t` input options for a span (none for a whole file). */
function spanArgs(start: number, length: number | undefined): string[] {
  const args = start > 0 ? ["-ss", start.toFixed(6)] : [];
  return length !== undefined ? [...args, "-t", length.toFixed(6)] : args;
}

/** The ffmpeg arguments that write a span's frames as raw rgb24 of exactly `width` x `height`. */
export function videoSpanArgs(
  file: string,
  start: number,
  length: number | undefined,
  fps: number,
  width: number,
  height: number,
): string[] {
  return [
    ...["-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1"],
    ...spanArgs(start, length),
    ...["-i", file, "-map", "0:v:0", "-vf", `fps=${fps},scale=${width}:${height}:flags=bilinear`],
    ...["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
  ];
}

/** The ffmpeg arguments that write a span's audio as mono float32 at `sampleRate`. */
export function audioSpanArgs(
  file: string,
  start: number,
  length: number | undefined,
  sampleRate: number,
): string[] {
  return [
    ...["-nostdin", "-hide_banner", "-loglevel", "error"],
    ...spanArgs(start, length),
    ...["-i", file, "-map", "0:a:0", "-ac", "1", "-ar", String(sampleRate), "-f", "f32le", "pipe:1"],
  ];
}

function encodeJpeg(frame: Uint8Array, width: number, height: number, quality: number): Promise<Uint8Array> {
  return sharp(frame, { raw: { width, height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: "4:2:0" })
    .toBuffer();
}

/** Streams the span's frames and JPEG-encodes them with `ahead` encodes in flight, in frame order. */
async function jpegFrames(
  args: string[],
  width: number,
  height: number,
  opts: SpanDecodeOptions,
  file: string,
  timeoutMs: number,
): Promise<Uint8Array[]> {
  const done: Uint8Array[] = [];
  const inFlight: Promise<Uint8Array>[] = [];
  const frames = streamMediaTool("ffmpeg", args, width * height * 3, {
    file,
    timeoutMs,
    signal: opts.signal,
  });
  for await (const frame of frames) {
    if (frame.length < width * height * 3) break; // a frame cut short when the file ends mid-frame
    inFlight.push(encodeJpeg(frame, width, height, opts.jpegQuality));
    if (inFlight.length >= opts.encodeAhead) done.push(await inFlight.shift()!);
  }
  for (const p of inFlight) done.push(await p);
  return done;
}

/** Streams the span's audio as int16, zero-padded or cut to exactly `samples`. */
async function int16Audio(
  args: string[],
  samples: number,
  file: string,
  timeoutMs: number,
  signal?: AbortSignal,
) {
  const out = new Int16Array(samples);
  let at = 0;
  const chunkBytes = 48_000 * 4;
  for await (const chunk of streamMediaTool("ffmpeg", args, chunkBytes, { file, timeoutMs, signal })) {
    if (at >= samples) continue; // drain: ffmpeg may give a few samples past the span
    // Copy to an aligned buffer: pipe chunks start at arbitrary byte offsets, Float32Array needs multiples of 4.
    const floats = new Float32Array(new Uint8Array(chunk).buffer, 0, chunk.length >> 2);
    const take = Math.min(floats.length, samples - at);
    toInt16(floats.subarray(0, take), out.subarray(at, at + take));
    at += take;
  }
  return out;
}

/** Caption token ids, one Int32Array of 16 per caption. */
function captionTokenIds(
  captions: readonly Caption[],
  vocab: Vocabulary | undefined,
): Int32Array[] | undefined {
  return vocab ? captions.map((c) => tokenize(c.text, vocab)) : undefined;
}

/** Captions in time order (start, then end), so a reader can scan them. */
export function timeOrdered(captions: readonly Caption[]): Caption[] {
  return [...captions].sort((a, b) => a.start - b.start || a.end - b.end);
}

/**
 * Decodes one span into a shard row. Throws MediaError (kind "invalid", "missing", "timeout", ...) when the file
 * cannot give it; the caller records that as a skip.
 */
export async function decodeSpan(
  item: SpanItem,
  options: Partial<SpanDecodeOptions> = {},
): Promise<PreparedRow> {
  const opts = { ...defaultSpanDecodeOptions, ...options };
  const info = await probe(item.path, { signal: opts.signal });
  if (!info.hasVideo) {
    throw new MediaError(
      `'${item.path}' has no video stream: a shard row needs frames`,
      item.path,
      "invalid",
    );
  }
  const turned = info.rotation === 90 || info.rotation === 270;
  const displayWidth = turned ? info.height : info.width;
  const displayHeight = turned ? info.width : info.height;
  const { width, height } = scaledSize(displayWidth, displayHeight, opts.shortSide);
  const start = Math.max(0, item.start ?? 0);
  const end = Math.min(
    item.end ?? info.duration,
    info.duration > 0 ? info.duration : Number.POSITIVE_INFINITY,
  );
  if (!(end > start)) {
    throw new MediaError(
      `'${item.path}': span [${start}, ${end}] s is empty (the file lasts ${info.duration} s)`,
      item.path,
      "invalid",
    );
  }
  const length = item.start !== undefined || item.end !== undefined ? end - start : undefined;
  const timeoutMs = opts.timeoutMs + (end - start) * 1000;
  const samples = Math.round((end - start) * opts.sampleRate);
  // One failure (e.g. a corrupt audio stream) stops the other process too instead of letting it run on.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const inner = { ...opts, signal: stop.signal };
  const video = jpegFrames(
    videoSpanArgs(item.path, start, length, opts.fps, width, height),
    width,
    height,
    inner,
    item.path,
    timeoutMs,
  );
  const sound = info.hasAudio
    ? int16Audio(
        audioSpanArgs(item.path, start, length, opts.sampleRate),
        samples,
        item.path,
        timeoutMs,
        stop.signal,
      )
    : Promise.resolve(new Int16Array(0));
  let frames: Uint8Array[];
  let audio: Int16Array;
  try {
    [frames, audio] = await Promise.all([video, sound]);
  } catch (err) {
    stop.abort();
    await Promise.allSettled([video, sound]);
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  if (frames.length === 0) {
    throw new MediaError(
      `'${item.path}' gave no video frames for [${start}, ${end}] s: check it with 'vatt probe'`,
      item.path,
      "invalid",
    );
  }
  const captions = timeOrdered(item.captions);
  return {
    id: item.id,
    source: item.source,
    path: item.storedPath ?? item.path,
    duration: info.duration,
    spanStart: start,
    spanEnd: end,
    sourceFps: info.avgFrameRate,
    sourceWidth: displayWidth,
    sourceHeight: displayHeight,
    fps: opts.fps,
    width,
    height,
    frames,
    sampleRate: opts.sampleRate,
    hasAudio: info.hasAudio,
    audio,
    captions,
    tokenIds: captionTokenIds(captions, opts.vocab),
    labels: item.labels,
  };
}
