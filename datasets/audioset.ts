/**
 * AudioSet: 10 s YouTube segments with multi-label sound classes.
 *
 * Index files (as Google publishes them):
 *   segments CSV (balanced_train_segments.csv, ...): three `#` comment lines, then
 *       -0RWZT-miFs, 420.000, 430.000, "/m/03v3yw,/m/0k4j"      (comma + space; label list quoted)
 *   class_labels_indices.csv: index,mid,display_name (names may be quoted and hold commas)
 *   ontology.json: [{ id, name, description, citation_uri, positive_examples, child_ids, restrictions }]
 *
 * Clip folder naming (the scheme `vatt synth` writes; downloaders must follow it):
 *   <root>/clips/<YTID>_<start>.<ext>
 * where <start> is the CSV start time as an integer number of seconds (420.000 -> 420, e.g.
 * `clips/-0RWZT-miFs_420.mp4`) and ext is one of mp4, mkv, webm, m4a, wav, flac (tried in that order). Each file
 * holds just that segment, so the window inside the file starts at 0. Many YouTube links are gone: a missing
 * clip is normal - counted in the SkipLog and skipped.
 *
 * Window: a random `frames / fps` window (default 3.2 s) inside the segment, drawn from
 * randomFor(seed, epoch, index, "audioset:window"). Refs carry class indices and no captions.
 */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { randomFor } from "../core/random.js";
import type { ClipRef, ClipSource } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { readCsvRecords } from "./csv.js";
import {
  AUDIOSET_EXTENSIONS,
  badInterval,
  excerpt,
  findMediaFile,
  parseNumber,
  type WindowOptions,
  where,
  windowLength,
} from "./source.js";

/** The classes of class_labels_indices.csv: `mids[i]` and `names[i]` belong to class index i. */
export interface AudioSetClasses {
  mids: string[];
  names: string[];
  indexOf: Map<string, number>;
}

export { multiHot } from "../core/labels.js";

const BAD_ROW_HINT = "Fix or delete the line; the row was skipped.";

/**
 * Class indices go up to here (no classification set has more than ~22k classes): a larger one is a broken
 * row, not a reason to size the class list by it.
 */
const MAX_CLASS_INDEX = 65_535;

/** Reads class_labels_indices.csv. Rows with a bad or repeated index are recorded and skipped. */
export async function readClassLabels(path: string, skips: SkipLog): Promise<AudioSetClasses> {
  const tag = `audioset:${basename(path)}`;
  const mids: string[] = [];
  const names: string[] = [];
  const indexOf = new Map<string, number>();
  let header = true;
  for await (const rec of readCsvRecords(path, { comment: null })) {
    const at = where(path, rec.line);
    if ("error" in rec) {
      skips.record(tag, "bad-row", `${at}: ${rec.error} in '${excerpt(rec.text)}'. ${BAD_ROW_HINT}`, {
        item: at,
      });
      continue;
    }
    if (header) {
      header = false;
      if (rec.fields[0]?.trim().toLowerCase() === "index") continue;
    }
    const [indexField, mid, name] = rec.fields;
    const index = parseNumber(indexField);
    if (rec.fields.length !== 3 || !Number.isInteger(index) || index < 0 || index > MAX_CLASS_INDEX || !mid) {
      skips.record(
        tag,
        "bad-row",
        `${at}: expected 3 columns index,mid,display_name with an integer index 0..${MAX_CLASS_INDEX}, found ` +
          `${rec.fields.length} in '${excerpt(rec.text)}' (quote names that hold commas). ${BAD_ROW_HINT}`,
        { item: at },
      );
      continue;
    }
    if (mids[index] !== undefined || indexOf.has(mid)) {
      skips.record(tag, "bad-row", `${at}: index ${index} or mid ${mid} appears twice. ${BAD_ROW_HINT}`, {
        item: at,
      });
      continue;
    }
    mids[index] = mid;
    names[index] = name;
    indexOf.set(mid, index);
  }
  const holes = mids.length - indexOf.size;
  if (holes > 0) {
    throw new Error(
      `${path}: ${holes} class indices below ${mids.length} are missing; the class list must be 0..N-1`,
    );
  }
  return { mids, names, indexOf };
}

export interface OntologyNode {
  id: string;
  name: string;
  description: string;
  citation_uri: string;
  positive_examples: string[];
  child_ids: string[];
  restrictions: string[];
}

/**
 * Reads ontology.json. It is small (~350 KB for 632 nodes), so it is parsed whole; nodes without an id or name
 * are recorded and skipped.
 */
export async function readOntology(path: string, skips: SkipLog): Promise<OntologyNode[]> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message}); re-download ontology.json`);
  }
  if (!Array.isArray(data)) throw new Error(`${path}: expected a JSON array of ontology nodes`);
  const nodes: OntologyNode[] = [];
  data.forEach((raw, i) => {
    const n = raw as Partial<OntologyNode> | null;
    if (!n || typeof n.id !== "string" || typeof n.name !== "string") {
      skips.record(
        `audioset:${basename(path)}`,
        "bad-row",
        `${path} element ${i}: an ontology node needs string "id" and "name"; skipped.`,
        { item: `${path} element ${i}`, unit: "node" },
      );
      return;
    }
    const strings = (v: unknown) =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
    nodes.push({
      id: n.id,
      name: n.name,
      description: typeof n.description === "string" ? n.description : "",
      citation_uri: typeof n.citation_uri === "string" ? n.citation_uri : "",
      positive_examples: strings(n.positive_examples),
      child_ids: strings(n.child_ids),
      restrictions: strings(n.restrictions),
    });
  });
  return nodes;
}

export interface AudioSetSegment {
  ytid: string;
  start: number;
  end: number;
  mids: string[];
}

/** Parses the fields of one segments row, or says what is wrong with it. */
export function parseSegmentRow(fields: string[]): AudioSetSegment | { error: string } {
  if (fields.length !== 4) {
    return {
      error:
        `expected 4 columns (YTID, start_seconds, end_seconds, "positive_labels"), found ${fields.length}` +
        (fields.length > 4 ? " (is the label list quoted?)" : ""),
    };
  }
  const [ytid, startField, endField, labelField] = fields;
  if (ytid === "") return { error: "the YTID column is empty" };
  const start = parseNumber(startField);
  const end = parseNumber(endField);
  const bad =
    badInterval(start, end) ?? (end === start ? `the segment is empty (start = end = ${start})` : undefined);
  if (bad) return { error: bad };
  const mids = labelField
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m !== "");
  return { ytid, start, end, mids };
}

/** The file stem of a segment: `<YTID>_<start seconds as an integer>`. */
export function segmentStem(ytid: string, start: number): string {
  return `${ytid}_${Math.round(start)}`;
}

export interface AudioSetOptions extends WindowOptions {
  root: string;
  /** Segments CSV; default `<root>/balanced_train_segments.csv`. */
  segments?: string;
  /** Default `<root>/class_labels_indices.csv`. */
  classLabels?: string;
  /** Folder of `<YTID>_<start>.<ext>` clips; default `<root>/clips`. */
  clips?: string;
  seed: number;
  skips: SkipLog;
}

export function audioSet(opts: AudioSetOptions): ClipSource {
  const windowSeconds = windowLength(opts);
  const segmentsPath = opts.segments ?? join(opts.root, "balanced_train_segments.csv");
  const labelsPath = opts.classLabels ?? join(opts.root, "class_labels_indices.csv");
  const clipsDir = opts.clips ?? join(opts.root, "clips");
  const { skips, seed } = opts;
  const tag = `audioset:${basename(segmentsPath)}`;
  let classes: Promise<AudioSetClasses> | undefined;

  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    classes ??= readClassLabels(labelsPath, skips);
    const { indexOf } = await classes;
    let index = 0;
    for await (const rec of readCsvRecords(segmentsPath)) {
      const at = where(segmentsPath, rec.line);
      const row = "error" in rec ? rec : parseSegmentRow(rec.fields);
      if ("error" in row) {
        skips.record(tag, "bad-row", `${at}: ${row.error} in '${excerpt(rec.text)}'. ${BAD_ROW_HINT}`, {
          item: at,
          pass: epoch,
        });
        continue;
      }
      const labels: number[] = [];
      for (const mid of row.mids) {
        const label = indexOf.get(mid);
        if (label === undefined) {
          skips.record(
            tag,
            "unknown-label",
            `${at}: label ${mid} is not in ${labelsPath}; the label was dropped. Use the class list that ` +
              "matches this segments file.",
            { item: `${at}: ${mid}`, unit: "label", pass: epoch },
          );
        } else if (!labels.includes(label)) labels.push(label);
      }
      labels.sort((a, b) => a - b);
      const stem = segmentStem(row.ytid, row.start);
      const path = await findMediaFile(clipsDir, stem, AUDIOSET_EXTENSIONS);
      if (!path) {
        skips.record(
          "audioset:clips",
          "missing-file",
          `${at}: no clip ${stem}.{${AUDIOSET_EXTENSIONS.join(",")}} in ${clipsDir} (the video may be gone ` +
            "from YouTube); skipped.",
          { item: join(clipsDir, `${stem}.*`), pass: epoch },
        );
        continue;
      }
      const duration = row.end - row.start;
      const rng = randomFor(seed, epoch, index, "audioset:window");
      const start = rng.uniform(0, Math.max(0, duration - windowSeconds));
      yield {
        source: "audioset",
        id: stem,
        path,
        start,
        end: Math.min(start + windowSeconds, duration),
        index,
        epoch,
        captions: [],
        labels,
        duration,
      };
      index++;
    }
  }

  return { name: "audioset", refs };
}
