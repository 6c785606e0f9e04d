/**
 * The ffmpeg-process decoder of operators/decode.ts: the command (`ffmpegDecodeArgs`), and the reading of its
 * outputs: the PPM frame stream (a fast path straight into the clip's buffer, and the general parser
 * `parsePpmStream`) and the f32le audio.
 */
import { uninitialisedBytes, uninitialisedFloat32 } from "../core/buffers.js";
import type { FilterGeometry } from "../core/geometry.js";
import { type CapturedOutput, runMediaToolCaptured } from "../media/capture.js";
import { MediaError } from "../media/process.js";
import type { RawDecode } from "./decode-loop.js";
import {
  clipSamples,
  clipSeconds,
  type DecodeCall,
  type DecodeOptions,
  effectiveFrameRate,
} from "./decode-options.js";

/** Scales to a short side of `shortSide`, computed by ffmpeg from the display size (after autorotate). */
function scaleFilter(shortSide: number): string {
  if (shortSide <= 0) return "";
  const s = shortSide;
  return `scale=w='if(lte(iw,ih),${s},round(iw*${s}/ih))':h='if(lte(iw,ih),round(ih*${s}/iw),${s})':flags=bilinear`;
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
 * Decodes a clip with one ffmpeg process (the arguments of `ffmpegDecodeArgs`): frames as PPM on stdout, audio as
 * f32le on fd 3, both captured and read straight into the clip's buffers. A file without an audio track is run
 * again without the audio output.
 */
export async function decodeWithFfmpeg(
  file: string,
  start: number,
  opts: DecodeOptions,
  call: Pick<DecodeCall, "signal" | "capture">,
  geometry: FilterGeometry | undefined,
): Promise<RawDecode> {
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
