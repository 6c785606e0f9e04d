/**
 * HowTo100M: narrated instructional videos with ASR captions.
 *
 * Layout under `root` (names overridable):
 *   HowTo100M_v1.csv   video_id,category_1,category_2,rank,task_id - the list of videos in the dataset
 *   caption.json       { video_id: { "start": [s...], "end": [s...], "text": [...] } }, seconds
 *   videos/<video_id>.<ext>   ext one of mp4, webm, mkv, mov (tried in that order)
 *
 * caption.json drives the stream (file order) and is stream-parsed with bounded memory (datasets/json-scan.ts);
 * the CSV is held as a set of ids (~1.2 M short strings) to recognise ids it does not list.
 *
 * Clip choice follows MIL-NCE: for each of `clipsPerVideo` clips, pick a random caption (or, with probability
 * `randomTimeProbability`, a random time) and centre the window (default 32 frames / 10 fps = 3.2 s) on it,
 * clamped to start >= 0 and, where the duration is known, end <= duration. The ref carries the `nearCaptions`
 * (default 5) captions nearest the window: exactly what MIL-NCE's K = 5 positives need.
 */
import { basename, join } from "node:path";
import { nearestCaptions, POSITIVES_PER_CLIP } from "../core/captions.js";
import { randomFor } from "../core/random.js";
import type { Caption, ClipRef, ClipSource } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { headerIndex, readCsvRecords } from "./csv.js";
import { scanJsonObject } from "./json-scan.js";
import {
  badInterval,
  excerpt,
  findMediaFile,
  MAX_MEDIA_SECONDS,
  VIDEO_EXTENSIONS,
  type WindowOptions,
  where,
  windowLength,
} from "./source.js";

export interface HowTo100MOptions extends WindowOptions {
  root: string;
  /** Video list; default `<root>/HowTo100M_v1.csv`. `false`: take every video in caption.json. */
  csv?: string | false;
  /** Default `<root>/caption.json`. */
  captions?: string;
  /** Folder of `<video_id>.<ext>` files; default `<root>/videos`. */
  videos?: string;
  /** Clips drawn per video per epoch (default 1). */
  clipsPerVideo?: number;
  /** Probability of centring a clip on a random time instead of a caption (default 0). */
  randomTimeProbability?: number;
  /** Captions carried per ref, nearest first (default 5 = MIL-NCE's K). */
  nearCaptions?: number;
  seed: number;
  skips: SkipLog;
  /** Duration of a video in seconds, when known (e.g. from `probe`); lets windows be clamped to the end. */
  durationOf?: (path: string, videoId: string) => Promise<number | undefined>;
}

/** A window of `length` seconds centred on `centre`, clamped to [0, duration]. */
export function placeWindow(
  centre: number,
  length: number,
  duration?: number,
): { start: number; end: number } {
  let start = Math.max(0, centre - length / 2);
  if (duration !== undefined && start + length > duration) start = Math.max(0, duration - length);
  const end = duration !== undefined ? Math.min(start + length, duration) : start + length;
  return { start, end };
}

export type CaptionEntry =
  | { captions: Caption[]; problems: { index: number; message: string }[] }
  | { error: string };

/**
 * Validates one caption.json value. A wrong shape or arrays of unequal length reject the whole video (the
 * pairing of times and texts is unknowable); a single bad caption (negative or reversed times, no text) is
 * dropped and reported.
 */
export function parseCaptionEntry(value: unknown): CaptionEntry {
  const v = value as { start?: unknown; end?: unknown; text?: unknown } | null;
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return {
      error: `expected an object {"start": [...], "end": [...], "text": [...]}, found ${typeName(value)}`,
    };
  }
  const { start, end, text } = v;
  if (!Array.isArray(start) || !Array.isArray(end) || !Array.isArray(text)) {
    const missing = (["start", "end", "text"] as const).filter((k) => !Array.isArray(v[k]));
    return { error: `"${missing.join('", "')}" must be ${missing.length > 1 ? "arrays" : "an array"}` };
  }
  if (start.length !== end.length || start.length !== text.length) {
    return {
      error:
        `the caption arrays have unequal lengths (start ${start.length}, end ${end.length}, text ${text.length}), ` +
        "so times cannot be paired with texts",
    };
  }
  const captions: Caption[] = [];
  const problems: { index: number; message: string }[] = [];
  for (let i = 0; i < start.length; i++) {
    const s = start[i] as number;
    const e = end[i] as number;
    const t = text[i];
    // Fast path for the common, valid caption (NaN and infinities fail `e - s >= 0` / `e <= MAX_MEDIA_SECONDS`).
    if (typeof t === "string" && s >= 0 && e - s >= 0 && e <= MAX_MEDIA_SECONDS) {
      captions.push({ start: s, end: e, text: t });
      continue;
    }
    const bad =
      typeof s !== "number" || typeof e !== "number"
        ? `times must be numbers, got start ${JSON.stringify(s)}, end ${JSON.stringify(e)}`
        : badInterval(s, e);
    if (bad) problems.push({ index: i, message: bad });
    else if (typeof t !== "string")
      problems.push({ index: i, message: `text must be a string, got ${typeName(t)}` });
    else captions.push({ start: s, end: e, text: t });
  }
  return { captions, problems };
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

/** The video ids listed in HowTo100M_v1.csv; malformed rows are recorded (as met in `pass`) and skipped. */
export async function readHowToVideoIds(path: string, skips: SkipLog, pass?: number): Promise<Set<string>> {
  const ids = new Set<string>();
  const tag = `howto100m:${basename(path)}`;
  let column = -1;
  for await (const rec of readCsvRecords(path, { comment: null })) {
    if ("error" in rec) {
      skips.record(
        tag,
        "bad-row",
        `${where(path, rec.line)}: ${rec.error} in '${excerpt(rec.text)}'. Fix the quoting; the row was skipped.`,
        { item: where(path, rec.line), pass },
      );
      continue;
    }
    if (column < 0) {
      column = headerIndex(rec.fields).get("video_id") ?? -1;
      if (column < 0) {
        throw new Error(
          `${where(path, rec.line)}: the header '${excerpt(rec.text)}' has no video_id column; expected ` +
            "video_id,category_1,category_2,rank,task_id (pass csv: false to use every video in caption.json)",
        );
      }
      continue;
    }
    const id = rec.fields[column]?.trim() ?? "";
    if (id === "") {
      skips.record(
        tag,
        "bad-row",
        `${where(path, rec.line)}: no video_id in '${excerpt(rec.text)}' (expected 5 columns ` +
          "video_id,category_1,category_2,rank,task_id). Fix or delete the line; the row was skipped.",
        { item: where(path, rec.line), pass },
      );
      continue;
    }
    ids.add(id);
  }
  return ids;
}

export function howTo100M(opts: HowTo100MOptions): ClipSource {
  const windowSeconds = windowLength(opts);
  const clipsPerVideo = opts.clipsPerVideo ?? 1;
  const randomTime = opts.randomTimeProbability ?? 0;
  const near = opts.nearCaptions ?? POSITIVES_PER_CLIP;
  const captionsPath = opts.captions ?? join(opts.root, "caption.json");
  const videosDir = opts.videos ?? join(opts.root, "videos");
  const csvPath = opts.csv === false ? undefined : (opts.csv ?? join(opts.root, "HowTo100M_v1.csv"));
  const { skips, seed } = opts;
  const captionTag = `howto100m:${basename(captionsPath)}`;

  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    // Read again every epoch, so rows added while training (`vatt pretrain --follow`) are picked up.
    const listed = csvPath ? await readHowToVideoIds(csvPath, skips, epoch) : undefined;
    const seen = { pass: epoch };
    const seenIds = listed ? new Set<string>() : undefined;
    let index = 0;
    for await (const event of scanJsonObject(captionsPath)) {
      const at = where(captionsPath, event.line);
      if (event.kind === "error") {
        if (event.key !== undefined) seenIds?.add(event.key); // reported here; not "missing" at the end
        skips.record(captionTag, "bad-json", `${at}: ${event.message}. The entry was skipped.`, {
          item: at,
          ...seen,
        });
        continue;
      }
      const videoId = event.key;
      if (listed && !listed.has(videoId)) {
        skips.record(
          captionTag,
          "unknown-video",
          `${at}: video id "${videoId}" is not listed in ${csvPath}. Add it to the CSV or remove it from ` +
            "caption.json; the video was skipped.",
          { item: at, ...seen },
        );
        continue;
      }
      seenIds?.add(videoId);
      const entry = parseCaptionEntry(event.value);
      if ("error" in entry) {
        skips.record(
          captionTag,
          "bad-captions",
          `${at}: video "${videoId}": ${entry.error}. The video was skipped.`,
          { item: at, ...seen },
        );
        continue;
      }
      for (const p of entry.problems) {
        skips.record(
          captionTag,
          "bad-caption",
          `${at}: video "${videoId}", caption ${p.index}: ${p.message}. The caption was dropped.`,
          { item: `${at}, caption ${p.index}`, unit: "caption", ...seen },
        );
      }
      if (entry.captions.length === 0) {
        skips.record(
          captionTag,
          "no-captions",
          `${at}: video "${videoId}" has no usable captions; skipped.`,
          {
            item: at,
            ...seen,
          },
        );
        continue;
      }
      const path = await findMediaFile(videosDir, videoId, VIDEO_EXTENSIONS);
      if (!path) {
        skips.record(
          "howto100m:videos",
          "missing-file",
          `video "${videoId}" (${at}) has no file in ${videosDir}: looked for ` +
            `${videoId}.{${VIDEO_EXTENSIONS.join(",")}}. Download it or drop it from the lists; skipped.`,
          { item: join(videosDir, `${videoId}.*`), ...seen },
        );
        continue;
      }
      const duration = await opts.durationOf?.(path, videoId);
      // Where random-time windows may fall: the video, or as far as its captions reach when its length is unknown.
      const span = duration ?? entry.captions.reduce((last, c) => Math.max(last, c.end), 0);
      for (let clip = 0; clip < clipsPerVideo; clip++, index++) {
        const rng = randomFor(seed, epoch, index, "howto100m:clip");
        let centre: number;
        if (randomTime > 0 && rng.bernoulli(randomTime)) {
          centre = rng.uniform(0, Math.max(0, span - windowSeconds)) + windowSeconds / 2;
        } else {
          const c = entry.captions[rng.int(entry.captions.length)];
          centre = (c.start + c.end) / 2;
        }
        const { start, end } = placeWindow(centre, windowSeconds, duration);
        yield {
          source: "howto100m",
          id: videoId,
          path,
          start,
          end,
          index,
          epoch,
          captions: nearestCaptions(entry.captions, start, end, near),
          labels: [],
          ...(duration !== undefined ? { duration } : {}),
        };
      }
    }
    if (listed && seenIds) {
      for (const id of listed) {
        if (!seenIds.has(id)) {
          skips.record(
            captionTag,
            "no-captions",
            `video "${id}" is listed in ${csvPath} but has no entry in ${captionsPath}; skipped.`,
            { item: `${csvPath}: ${id}`, unit: "video", ...seen },
          );
        }
      }
    }
  }

  return { name: "howto100m", refs };
}
