/**
 * What every dataset file exports: a `ClipSource`, an epoch-indexed pull stream of ClipRefs, plus the small
 * helpers they share (finding a media file by stem, the default window length, skip messages that say where).
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";

/** Extensions tried, in this order, when a video is named only by its id. */
export const VIDEO_EXTENSIONS = ["mp4", "webm", "mkv", "mov"] as const;

/** Extensions of an AudioSet clip: video containers first, then audio-only downloads. */
export const AUDIOSET_EXTENSIONS = ["mp4", "mkv", "webm", "m4a", "wav", "flac"] as const;

/** The pretraining window: 32 frames at 10 fps = 3.2 s (VATT, HowTo100M). */
export const DEFAULT_FRAMES = 32;
export const DEFAULT_FPS = 10;

export interface WindowOptions {
  /** Window length in seconds; overrides frames / fps. */
  windowSeconds?: number;
  /** Frames per window (default 32). */
  frames?: number;
  /** Frame rate of the window (default 10). */
  fps?: number;
}

/** The window length in seconds from either `windowSeconds` or `frames / fps`. */
export function windowLength(opts: WindowOptions): number {
  const seconds = opts.windowSeconds ?? (opts.frames ?? DEFAULT_FRAMES) / (opts.fps ?? DEFAULT_FPS);
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new RangeError(`window length must be a positive number of seconds, got ${seconds}`);
  }
  return seconds;
}

/** `dir/stem.ext` for the first extension that names a regular file, or undefined. One stat per try. */
export async function findMediaFile(
  dir: string,
  stem: string,
  exts: readonly string[],
): Promise<string | undefined> {
  for (const ext of exts) {
    const path = join(dir, `${stem}.${ext}`);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) return path;
  }
  return undefined;
}

/** True when `path` is a regular file. */
export async function isFile(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ?? false;
}

/** "FILE line N" (or "FILE row N" for Parquet), the location part of every skip message. */
export function where(file: string, line: number, unit: "line" | "row" = "line"): string {
  return `${file} ${unit} ${line}`;
}

/** A value shortened for a message: long rows would drown the point. */
export function excerpt(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length <= max ? flat : `${flat.slice(0, max - 3)}...`;
}

/** Parses a finite number from a CSV field ("420.000", " 1e3"); NaN for anything else, including "". */
export function parseNumber(field: string | undefined): number {
  if (field === undefined) return Number.NaN;
  const trimmed = field.trim();
  return trimmed === "" ? Number.NaN : Number(trimmed);
}

/**
 * No media time is later than this (about 116 days): a larger one is a broken value, and past ~1e15 s a window
 * around it cannot even be represented (start + length rounds back to start).
 */
export const MAX_MEDIA_SECONDS = 1e7;

/** Why a [start, end] pair of seconds is unusable, or undefined when it is fine. */
export function badInterval(start: number, end: number): string | undefined {
  if (!Number.isFinite(start) || !Number.isFinite(end))
    return `times must be numbers, got start ${start}, end ${end}`;
  if (start < 0) return `start ${start} is negative`;
  if (end > MAX_MEDIA_SECONDS) return `end ${end} s is beyond any media (more than ${MAX_MEDIA_SECONDS} s)`;
  if (end < start) return `end ${end} is before start ${start} (reversed times)`;
  return undefined;
}
