/**
 * The usual video/audio classification layouts, as ClipSources with class indices:
 *
 *   ucf101      split file lines `Class/v_Class_g08_c01.avi 1` (train, 1-based label) or `Class/v_....avi` (test),
 *               classInd.txt lines `1 ApplyEyeMakeup`; videos at `<videos>/<line path>`.
 *   hmdb51      per-class split files `<class>_test_split<k>.txt`, lines `<video>.avi <0|1|2>` (1 train, 2 test,
 *               0 unused); classes = the sorted class names; videos at `<videos>/<class>/<video>`.
 *   kinetics    CSV `label,youtube_id,time_start,time_end,split` (the label column may be absent for test);
 *               classes = sorted labels; clips at `<videos>/<label>/<id>_<start 6 digits>_<end 6 digits>.<ext>` or
 *               the same name directly in `<videos>`.
 *   esc50       `meta/esc50.csv` (filename,fold,target,category,esc10,src_file,take), audio in `audio/<filename>`;
 *               label = target; 5 s clips; optional fold filter.
 *   classFolders `<root>/<class>/<file>`, classes and files in sorted order.
 *
 * Window: every ref starts at 0 and spans `frames / fps` seconds (default 3.2 s); `duration` is set where the
 * layout knows it (Kinetics, ESC-50). Evaluation places its own windows (4 uniformly spaced) from the duration.
 */
import { readdir, readFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import type { ClipRef, ClipSource } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { headerIndex, readCsvRecords } from "./csv.js";
import {
  excerpt,
  findMediaFile,
  isFile,
  parseNumber,
  VIDEO_EXTENSIONS,
  type WindowOptions,
  where,
  windowLength,
} from "./source.js";

/** A ClipSource that also names its classes (index = position). */
export interface ClassificationSource extends ClipSource {
  classes(): Promise<string[]>;
}

/** One listed item before its file is checked. */
type Item = {
  /** Where it was listed ("FILE line N"), for messages. */
  at: string;
  id: string;
  candidates: () => Promise<string | undefined>;
  label: number | undefined;
  duration?: number;
};
/** A line that cannot be used: the message, and where it is ("FILE line N", the skip's item). */
type Skipped = { skip: string; at: string };
type Listed = Item | Skipped;

const SKIP_HINT = "Fix or delete the line; it was skipped.";

/**
 * Class indices go up to here (no classification set has more than ~22k classes): a larger one is a broken
 * line, not a reason to size the class list by it.
 */
const MAX_CLASS_INDEX = 65_535;

/** Shared tail of every layout: record bad lines and missing files, number the refs, build them. */
function classificationSource(
  name: string,
  window: WindowOptions,
  skips: SkipLog,
  classes: () => Promise<string[]>,
  items: () => AsyncGenerator<Listed>,
): ClassificationSource {
  const seconds = windowLength(window);
  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    let index = 0;
    for await (const item of items()) {
      if ("skip" in item) {
        skips.record(name, "bad-row", item.skip, { item: item.at, pass: epoch });
        continue;
      }
      const path = await item.candidates();
      if (!path) {
        skips.record(
          name,
          "missing-file",
          `${item.at}: no media file for ${item.id}; skipped (download it or drop the line).`,
          { item: item.at, unit: "file", pass: epoch },
        );
        continue;
      }
      yield {
        source: name,
        id: item.id,
        path,
        start: 0,
        end: item.duration !== undefined ? Math.min(seconds, item.duration) : seconds,
        index: index++,
        epoch,
        captions: [],
        labels: item.label === undefined ? [] : [item.label],
        ...(item.duration !== undefined ? { duration: item.duration } : {}),
      };
    }
  }
  return { name, refs, classes };
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= make();
    return p;
  };
}

function fileIfExists(path: string): () => Promise<string | undefined> {
  return async () => ((await isFile(path)) ? path : undefined);
}

/** Lines of a small text file with 1-based numbers, blank lines dropped. */
async function textLines(path: string): Promise<{ line: number; text: string }[]> {
  return (await readFile(path, "utf8"))
    .split(/\r?\n/)
    .map((text, i) => ({ line: i + 1, text: text.trim() }))
    .filter((l) => l.text !== "");
}

export interface Ucf101Options extends WindowOptions {
  videos: string;
  /** trainlist0k.txt or testlist0k.txt */
  splitFile: string;
  /** Default: classInd.txt beside the split file. */
  classIndex?: string;
  skips: SkipLog;
}

export function ucf101(opts: Ucf101Options): ClassificationSource {
  const classIndex = opts.classIndex ?? join(opts.splitFile, "..", "classInd.txt");
  const classes = once(async () => {
    const names: string[] = [];
    for (const { line, text } of await textLines(classIndex)) {
      const [num, name] = text.split(/\s+/);
      const i = Number(num) - 1;
      if (!name || !Number.isInteger(i) || i < 0 || i > MAX_CLASS_INDEX || names[i] !== undefined) {
        throw new Error(
          `${where(classIndex, line)}: expected '<1-based index> <ClassName>' (a new index up to ` +
            `${MAX_CLASS_INDEX + 1}), found '${excerpt(text)}'`,
        );
      }
      names[i] = name;
    }
    const missing = names.findIndex((n) => n === undefined);
    if (missing >= 0) {
      throw new Error(`${classIndex}: class ${missing + 1} is not listed; the classes must be numbered 1..N`);
    }
    return names;
  });
  async function* items(): AsyncGenerator<Listed> {
    const names = await classes();
    const byName = new Map(names.map((n, i) => [n, i]));
    for (const { line, text } of await textLines(opts.splitFile)) {
      const [rel, num] = text.split(/\s+/);
      const label = num !== undefined ? Number(num) - 1 : byName.get(rel.split("/")[0]);
      if (label === undefined || !Number.isInteger(label) || label < 0 || label >= names.length) {
        yield {
          at: where(opts.splitFile, line),
          skip: `${where(opts.splitFile, line)}: no known class for '${excerpt(text)}' (classes from ${classIndex}). ${SKIP_HINT}`,
        };
        continue;
      }
      yield {
        at: where(opts.splitFile, line),
        id: rel,
        label,
        candidates: fileIfExists(join(opts.videos, rel)),
      };
    }
  }
  return classificationSource("ucf101", opts, opts.skips, classes, items);
}

export interface Hmdb51Options extends WindowOptions {
  videos: string;
  /** Folder of `<class>_test_split<k>.txt` files. */
  splits: string;
  split: 1 | 2 | 3;
  subset: "train" | "test";
  skips: SkipLog;
}

export function hmdb51(opts: Hmdb51Options): ClassificationSource {
  const suffix = `_test_split${opts.split}.txt`;
  const splitFiles = once(async () =>
    (await readdir(opts.splits))
      .filter((f) => f.endsWith(suffix))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const classes = once(async () => (await splitFiles()).map((f) => f.slice(0, -suffix.length)));
  const wanted = opts.subset === "train" ? "1" : "2";
  async function* items(): AsyncGenerator<Listed> {
    const files = await splitFiles();
    for (let label = 0; label < files.length; label++) {
      const file = join(opts.splits, files[label]);
      const className = files[label].slice(0, -suffix.length);
      for (const { line, text } of await textLines(file)) {
        const [video, flag] = text.split(/\s+/);
        if (flag !== "0" && flag !== "1" && flag !== "2") {
          yield {
            at: where(file, line),
            skip: `${where(file, line)}: expected '<video> <0|1|2>', found '${excerpt(text)}'. ${SKIP_HINT}`,
          };
          continue;
        }
        if (flag !== wanted) continue;
        yield {
          at: where(file, line),
          id: `${className}/${video}`,
          label,
          candidates: fileIfExists(join(opts.videos, className, video)),
        };
      }
    }
  }
  return classificationSource("hmdb51", opts, opts.skips, classes, items);
}

export interface KineticsOptions extends WindowOptions {
  csv: string;
  videos: string;
  /** Keep only rows of this split (when the CSV has a split column). */
  split?: string;
  /** Class names (index = position); default: the sorted labels of the CSV. Pass the train list for val/test. */
  classes?: string[];
  skips: SkipLog;
}

/** `<youtube_id>_<start>_<end>`, times as 6-digit integers (the ActivityNet downloader's names). */
export function kineticsStem(youtubeId: string, start: number, end: number): string {
  const six = (t: number) => String(Math.round(t)).padStart(6, "0");
  return `${youtubeId}_${six(start)}_${six(end)}`;
}

export function kinetics(opts: KineticsOptions): ClassificationSource {
  type Row = {
    line: number;
    text: string;
    label?: string;
    id: string;
    start: number;
    end: number;
    split?: string;
  };
  async function* rows(): AsyncGenerator<Row | Skipped> {
    let cols: Map<string, number> | undefined;
    for await (const rec of readCsvRecords(opts.csv, { comment: null })) {
      const at = where(opts.csv, rec.line);
      if ("error" in rec) {
        yield { at, skip: `${at}: ${rec.error}. ${SKIP_HINT}` };
        continue;
      }
      if (!cols) {
        cols = headerIndex(rec.fields);
        if (!cols.has("youtube_id") || !cols.has("time_start") || !cols.has("time_end")) {
          throw new Error(
            `${at}: expected a header label,youtube_id,time_start,time_end,split; found '${rec.text}'`,
          );
        }
        continue;
      }
      const get = (name: string) => {
        const i = cols?.get(name);
        return i === undefined ? undefined : rec.fields[i];
      };
      const start = parseNumber(get("time_start"));
      const end = parseNumber(get("time_end"));
      const id = get("youtube_id") ?? "";
      if (rec.fields.length !== cols.size || id === "" || !(start >= 0) || !(end > start)) {
        yield {
          at,
          skip: `${at}: expected ${cols.size} columns with a youtube_id and 0 <= time_start < time_end, found '${excerpt(rec.text)}'. ${SKIP_HINT}`,
        };
        continue;
      }
      yield { line: rec.line, text: rec.text, label: get("label"), id, start, end, split: get("split") };
    }
  }
  const classes = once(async () => {
    if (opts.classes) return opts.classes;
    const labels = new Set<string>();
    for await (const r of rows()) if (!("skip" in r) && r.label) labels.add(r.label);
    return [...labels].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  });
  async function* items(): AsyncGenerator<Listed> {
    const byName = new Map((await classes()).map((n, i) => [n, i]));
    for await (const r of rows()) {
      if ("skip" in r) {
        yield r;
        continue;
      }
      if (opts.split !== undefined && r.split !== undefined && r.split !== opts.split) continue;
      const label = r.label ? byName.get(r.label) : undefined;
      if (r.label && label === undefined) {
        yield {
          at: where(opts.csv, r.line),
          skip: `${where(opts.csv, r.line)}: unknown class '${r.label}' (not in the class list). ${SKIP_HINT}`,
        };
        continue;
      }
      const stem = kineticsStem(r.id, r.start, r.end);
      const candidates = async () =>
        (r.label ? await findMediaFile(join(opts.videos, r.label), stem, VIDEO_EXTENSIONS) : undefined) ??
        (await findMediaFile(opts.videos, stem, VIDEO_EXTENSIONS));
      yield { at: where(opts.csv, r.line), id: stem, label, candidates, duration: r.end - r.start };
    }
  }
  return classificationSource("kinetics", opts, opts.skips, classes, items);
}

export interface Esc50Options extends WindowOptions {
  root: string;
  /** Keep only these folds (1..5); default all. */
  folds?: number[];
  skips: SkipLog;
}

/** ESC-50's clip length. */
const ESC50_SECONDS = 5;

export function esc50(opts: Esc50Options): ClassificationSource {
  const csv = join(opts.root, "meta", "esc50.csv");
  type Row = { line: number; filename: string; fold: number; target: number; category: string };
  async function* rows(): AsyncGenerator<Row | Skipped> {
    let cols: Map<string, number> | undefined;
    for await (const rec of readCsvRecords(csv, { comment: null })) {
      const at = where(csv, rec.line);
      if ("error" in rec) {
        yield { at, skip: `${at}: ${rec.error}. ${SKIP_HINT}` };
        continue;
      }
      if (!cols) {
        cols = headerIndex(rec.fields);
        if (!["filename", "fold", "target", "category"].every((c) => cols?.has(c))) {
          throw new Error(`${at}: expected the header filename,fold,target,category,esc10,src_file,take`);
        }
        continue;
      }
      const f = (name: string) => rec.fields[cols?.get(name) ?? -1] ?? "";
      const fold = parseNumber(f("fold"));
      const target = parseNumber(f("target"));
      if (
        rec.fields.length !== cols.size ||
        f("filename") === "" ||
        !Number.isInteger(target) ||
        target < 0 ||
        target > MAX_CLASS_INDEX
      ) {
        yield {
          at,
          skip: `${at}: expected ${cols.size} columns with a filename and an integer target 0..${MAX_CLASS_INDEX}, found '${excerpt(rec.text)}'. ${SKIP_HINT}`,
        };
        continue;
      }
      yield { line: rec.line, filename: f("filename"), fold, target, category: f("category") };
    }
  }
  const classes = once(async () => {
    const names: string[] = [];
    for await (const r of rows()) if (!("skip" in r)) names[r.target] = r.category;
    return Array.from(names, (n, i) => n ?? `class_${i}`);
  });
  async function* items(): AsyncGenerator<Listed> {
    for await (const r of rows()) {
      if ("skip" in r) yield r;
      else if (!opts.folds || opts.folds.includes(r.fold)) {
        const path = join(opts.root, "audio", r.filename);
        yield {
          at: where(csv, r.line),
          id: r.filename,
          label: r.target,
          candidates: fileIfExists(path),
          duration: ESC50_SECONDS,
        };
      }
    }
  }
  return classificationSource("esc50", opts, opts.skips, classes, items);
}

export interface ClassFoldersOptions extends WindowOptions {
  root: string;
  /** File extensions to take (default: video and audio containers). */
  extensions?: string[];
  skips: SkipLog;
}

const MEDIA_EXTENSIONS = [...VIDEO_EXTENSIONS, "avi", "m4a", "wav", "flac", "mp3", "ogg"];

export function classFolders(opts: ClassFoldersOptions): ClassificationSource {
  const exts = new Set(
    (opts.extensions ?? MEDIA_EXTENSIONS).map((e) => `.${e.replace(/^\./, "").toLowerCase()}`),
  );
  const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const classes = once(async () =>
    (await readdir(opts.root, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort(byCodeUnit),
  );
  async function* items(): AsyncGenerator<Listed> {
    const names = await classes();
    for (let label = 0; label < names.length; label++) {
      const dir = join(opts.root, names[label]);
      const files = (await readdir(dir)).filter((f) => exts.has(extname(f).toLowerCase())).sort(byCodeUnit);
      for (const f of files) {
        const path = join(dir, f);
        yield { at: path, id: `${names[label]}/${basename(f)}`, label, candidates: async () => path };
      }
    }
  }
  return classificationSource("folders", opts, opts.skips, classes, items);
}
