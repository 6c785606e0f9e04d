/**
 * YouCook2: cooking videos with annotated steps; text -> video retrieval over the steps of the validation
 * videos (3,320 clips in the paper's protocol).
 *
 * Layout under `root` (names overridable):
 *   youcookii_annotations_trainval.json   {"database": {<id>: {"duration": s, "subset": "training"|"validation",
 *                                          "recipe_type": "113", "annotations": [{"segment": [start, end], "id": 0,
 *                                          "sentence": "..."}], "video_url": ...}}}
 *   raw_videos/<subset>/<recipe_type>/<id>.<ext>   ext one of mp4, webm, mkv, mov (tried in that order)
 *
 * One ref per annotated segment of the chosen subset, in file order: the window is the segment, its sentence the
 * one caption, `duration` the video's. The file is small (about 2,000 videos) and read whole; a bad entry names
 * the line its video's key is on. A video without a file counts one skip for the video.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ClipRef, ClipSource } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { badInterval, findMediaFile, VIDEO_EXTENSIONS, where } from "./source.js";

export type YouCook2Subset = "training" | "validation";

export interface YouCook2Options {
  root: string;
  /** Default `<root>/youcookii_annotations_trainval.json`. */
  annotations?: string;
  /** Default `<root>/raw_videos`. */
  videos?: string;
  /** Which videos (default "validation", the retrieval benchmark's). */
  subset?: YouCook2Subset;
  skips: SkipLog;
}

const NAME = "youcook2";

/** One validated segment of a video. */
export interface YouCook2Segment {
  id: string;
  start: number;
  end: number;
  sentence: string;
}

/** One video's entry, checked: its usable segments and what was wrong with the others. */
export type YouCook2Entry =
  | {
      duration: number;
      subset: string;
      recipeType: string;
      segments: YouCook2Segment[];
      problems: string[];
    }
  | { error: string };

/** Validates one `database` value. A wrong shape rejects the video; a bad annotation is dropped and reported. */
export function parseYouCook2Entry(value: unknown): YouCook2Entry {
  const v = value as Record<string, unknown> | null;
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return { error: "expected an object {duration, subset, recipe_type, annotations}" };
  }
  const { duration, subset, recipe_type: recipeType, annotations } = v;
  if (typeof duration !== "number" || !(duration > 0)) {
    return { error: `"duration" must be a positive number of seconds, got ${JSON.stringify(duration)}` };
  }
  if (typeof subset !== "string" || subset === "") return { error: `"subset" must be a string` };
  if (typeof recipeType !== "string" && typeof recipeType !== "number") {
    return { error: `"recipe_type" must be a string, got ${JSON.stringify(recipeType)}` };
  }
  if (!Array.isArray(annotations)) return { error: `"annotations" must be an array` };
  const segments: YouCook2Segment[] = [];
  const problems: string[] = [];
  annotations.forEach((a: unknown, k) => {
    const ann = a as { segment?: unknown; id?: unknown; sentence?: unknown } | null;
    const seg = ann?.segment;
    if (!Array.isArray(seg) || seg.length !== 2 || seg.some((x) => typeof x !== "number")) {
      problems.push(`annotation ${k}: "segment" must be [start, end] in seconds, got ${JSON.stringify(seg)}`);
      return;
    }
    const [start, end] = seg as number[];
    const bad =
      badInterval(start, end) ??
      (end === start ? `the segment is empty ([${start}, ${end}])` : undefined) ??
      (start >= duration
        ? `the segment starts at ${start}, after the video's end (${duration} s)`
        : undefined);
    if (bad) {
      problems.push(`annotation ${k}: ${bad}`);
      return;
    }
    if (typeof ann?.sentence !== "string" || ann.sentence.trim() === "") {
      problems.push(`annotation ${k}: "sentence" must be a non-empty string`);
      return;
    }
    const id = typeof ann.id === "number" || typeof ann.id === "string" ? String(ann.id) : String(k);
    segments.push({ id, start, end: Math.min(end, duration), sentence: ann.sentence.trim() });
  });
  return { duration, subset, recipeType: String(recipeType), segments, problems };
}

/** The 1-based line of the first `"key":` in the text (where a video's entry starts), or 1. */
function lineOfKey(text: string, key: string): number {
  const at = text.indexOf(`${JSON.stringify(key)}:`);
  if (at < 0) return 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < at; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

export function youcook2(opts: YouCook2Options): ClipSource {
  const annotations = opts.annotations ?? join(opts.root, "youcookii_annotations_trainval.json");
  const videos = opts.videos ?? join(opts.root, "raw_videos");
  const subset = opts.subset ?? "validation";
  const { skips } = opts;

  async function readDatabase(): Promise<{ text: string; database: Record<string, unknown> }> {
    const text = await readFile(annotations, "utf8");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${annotations}: not valid JSON (${(err as Error).message}). Download the file again.`);
    }
    const database = (parsed as { database?: unknown } | null)?.database;
    if (database === null || typeof database !== "object" || Array.isArray(database)) {
      throw new Error(
        `${annotations}: expected {"database": {<video id>: {...}}} (youcookii_annotations_trainval.json)`,
      );
    }
    return { text, database: database as Record<string, unknown> };
  }

  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    const { text, database } = await readDatabase();
    let index = 0;
    for (const [videoId, value] of Object.entries(database)) {
      const at = () => `${where(annotations, lineOfKey(text, videoId))}: video "${videoId}"`;
      const seen = { item: `${annotations}: ${videoId}`, unit: "video", pass: epoch };
      const entry = parseYouCook2Entry(value);
      if ("error" in entry) {
        skips.record(NAME, "bad-entry", `${at()}: ${entry.error}. The video was skipped.`, seen);
        continue;
      }
      if (entry.subset !== subset) continue;
      for (const p of entry.problems) {
        skips.record(NAME, "bad-annotation", `${at()}, ${p}. The segment was dropped.`, {
          ...seen,
          item: `${seen.item}: ${p}`,
          unit: "segment",
        });
      }
      if (entry.segments.length === 0) continue;
      const folder = join(videos, entry.subset, entry.recipeType);
      const path = await findMediaFile(folder, videoId, VIDEO_EXTENSIONS);
      if (!path) {
        skips.record(
          NAME,
          "missing-file",
          `${at()}: no file in ${folder} (looked for ${videoId}.{${VIDEO_EXTENSIONS.join(",")}}); its ` +
            `${entry.segments.length} segments were skipped. Download it or drop the entry.`,
          { item: join(folder, `${videoId}.*`), pass: epoch },
        );
        continue;
      }
      for (const s of entry.segments) {
        yield {
          source: NAME,
          id: `${videoId}_${s.id}`,
          path,
          start: s.start,
          end: s.end,
          index: index++,
          epoch,
          captions: [{ start: s.start, end: s.end, text: s.sentence }],
          labels: [],
          duration: entry.duration,
        };
      }
    }
  }

  return { name: NAME, refs };
}
