/**
 * The decode operator's options (operators/decode.ts) and the clip arithmetic every decoder shares: frames,
 * seconds and audio samples of a clip.
 */
import type { FilterGeometry } from "../core/geometry.js";

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
   * Who decodes: "libav" (FFmpeg's libraries in long-lived workers, media/libav.ts: ~2 ms of CPU a small clip),
   * "process" (one ffmpeg process per clip, as below: ~8.5 ms), or "auto" (libav when node-av loads here).
   */
  decoder: "auto" | "libav" | "process";
  /**
   * Where the libav decoder's workers run: child processes (a file that crashes the decoder costs its clip, which
   * is tried once more and then skipped) or threads of this process (a crash ends the process).
   */
  isolation: "process" | "thread";
  /**
   * Decoding workers of the libav decoder; 0 leaves one core to the thread that trains (one per core but one). The
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
  isolation: "process",
  workers: 0,
};

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
