/**
 * A generic clip list: one row per clip, as CSV (with a header), JSONL or Parquet (chosen by extension).
 *
 * Columns: `path` (relative to the manifest's folder, or absolute), `start` and `end` (seconds in the file),
 * optional `text` (becomes one caption spanning the window), optional `labels` (class indices: a JSON/Parquet
 * list, one integer, or a string like "3 7" / "3;7" / "3,7"), optional `id` (default: the path).
 *
 * Every row is streamed: CSV and JSONL line by line, Parquet one row group at a time (a file-backed Blob, so
 * only the row group being read is in memory).
 */
import { createReadStream, openAsBlob } from "node:fs";
import { basename, dirname, extname, isAbsolute, resolve } from "node:path";
import { createInterface } from "node:readline";
import { tableFromIPC } from "apache-arrow";
import type { ClipRef, ClipSource } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { readCsvRecords } from "./csv.js";
import { freeParquetFile, parquetWasm, readParquetGuarded } from "./parquet-guard.js";
import { badInterval, excerpt, isFile } from "./source.js";

export type ManifestFormat = "csv" | "jsonl" | "parquet";

export interface ManifestOptions {
  path: string;
  /** Default: from the extension (.csv, .jsonl / .ndjson, .parquet). */
  format?: ManifestFormat;
  /** Check that each media file exists (default true); a missing one is recorded and skipped. */
  checkFiles?: boolean;
  /** `source` of the refs (default "manifest"). */
  source?: string;
  skips: SkipLog;
}

/** One raw row with where it came from ("line 7" or "row 7"). */
interface RawRow {
  at: string;
  values: Record<string, unknown>;
}

type Failure = { at: string; error: string };

export function manifestFormat(path: string): ManifestFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  if (ext === ".parquet") return "parquet";
  throw new Error(`${path}: unknown manifest format '${ext}'; use .csv, .jsonl or .parquet (or pass format)`);
}

/** A cell's number: numbers, bigints and numeric strings; NaN for anything else (an object never converts). */
function cellNumber(v: unknown): number {
  if (typeof v === "number" || typeof v === "bigint") return Number(v);
  if (typeof v === "string") return v.trim() === "" ? Number.NaN : Number(v);
  return Number.NaN;
}

/** A cell as it appears in a message (a Parquet struct may hold bigints, which JSON.stringify refuses). */
function showCell(v: unknown): string {
  try {
    return excerpt(
      typeof v === "string"
        ? v
        : (JSON.stringify(v, (_, x) => (typeof x === "bigint" ? String(x) : x)) ?? String(v)),
    );
  } catch {
    return `(a ${typeof v})`;
  }
}

/** Class indices from a cell: a list, one integer, or a string of integers separated by spaces, ',' or ';'. */
export function parseLabels(cell: unknown): number[] | { error: string } {
  if (cell === undefined || cell === null || cell === "") return [];
  let items: unknown[];
  if (typeof cell === "string") {
    const trimmed = cell.trim().replace(/^\[|\]$/g, "");
    items = trimmed === "" ? [] : trimmed.split(/[\s,;]+/);
  } else if (typeof cell === "number" || typeof cell === "bigint") items = [cell];
  else if (typeof cell === "object" && Symbol.iterator in cell) items = Array.from(cell as Iterable<unknown>);
  else return { error: `labels must be class indices, got ${showCell(cell)}` };
  const labels = items.map(cellNumber);
  const bad = labels.findIndex((n) => !Number.isSafeInteger(n) || n < 0);
  if (bad >= 0) return { error: `labels must be integers >= 0, got '${showCell(items[bad])}'` };
  return labels;
}

/** Checks one row's cells and builds the ref's fields (path still relative). */
export function manifestRow(
  values: Record<string, unknown>,
):
  | { path: string; start: number; end: number; text?: string; labels: number[]; id?: string }
  | { error: string } {
  const path = values.path;
  if (typeof path !== "string" || path.trim() === "") return { error: "the path column is empty or missing" };
  const start = cellNumber(values.start);
  const end = cellNumber(values.end);
  const bad =
    badInterval(start, end) ?? (end === start ? `the window is empty (start = end = ${start})` : undefined);
  if (bad) return { error: bad };
  const labels = parseLabels(values.labels);
  if ("error" in labels) return labels;
  const text = values.text;
  if (text !== undefined && text !== null && typeof text !== "string")
    return { error: "text must be a string" };
  const id = values.id;
  return {
    path: path.trim(),
    start,
    end,
    labels,
    ...(typeof text === "string" && text !== "" ? { text } : {}),
    ...(typeof id === "string" && id !== "" ? { id } : typeof id === "number" ? { id: String(id) } : {}),
  };
}

async function* csvRows(path: string): AsyncGenerator<RawRow | Failure> {
  let header: string[] | undefined;
  for await (const rec of readCsvRecords(path, { comment: null, multiline: true })) {
    const at = `line ${rec.line}`;
    if ("error" in rec) {
      yield { at, error: `${rec.error} in '${excerpt(rec.text)}'` };
      continue;
    }
    if (!header) {
      header = rec.fields.map((f) => f.trim().toLowerCase());
      if (!header.includes("path")) {
        throw new Error(
          `${path} line ${rec.line}: the header has no 'path' column; expected path,start,end[,text,labels]`,
        );
      }
      continue;
    }
    if (rec.fields.length !== header.length) {
      yield {
        at,
        error: `expected ${header.length} columns (${header.join(",")}), found ${rec.fields.length}`,
      };
      continue;
    }
    yield { at, values: Object.fromEntries(header.map((h, i) => [h, rec.fields[i]])) };
  }
}

async function* jsonlRows(path: string): AsyncGenerator<RawRow | Failure> {
  const input = createReadStream(path, { encoding: "utf8" });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of lines) {
      n++;
      if (text.trim() === "") continue;
      const at = `line ${n}`;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        yield { at, error: `not valid JSON (${(err as Error).message})` };
        continue;
      }
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        yield { at, error: `expected a JSON object per line, found '${excerpt(text)}'` };
      } else yield { at, values: value as Record<string, unknown> };
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

async function* parquetRows(path: string): AsyncGenerator<RawRow> {
  const blob = await openAsBlob(path);
  const file = await readParquetGuarded(path, () => parquetWasm().ParquetFile.fromFile(blob));
  try {
    const groups = await readParquetGuarded(path, () => file.metadata().numRowGroups());
    let row = 0;
    for (let g = 0; g < groups; g++) {
      const table = await readParquetGuarded(path, async () =>
        tableFromIPC((await file.read({ rowGroups: [g] })).intoIPCStream()),
      );
      for (const r of table) {
        row++;
        const values: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(r?.toJSON() ?? {})) values[k.toLowerCase()] = v;
        yield { at: `row ${row}`, values };
      }
    }
  } finally {
    freeParquetFile(file);
  }
}

function rowsOf(path: string, format: ManifestFormat): AsyncGenerator<RawRow | Failure> {
  if (format === "csv") return csvRows(path);
  if (format === "jsonl") return jsonlRows(path);
  return parquetRows(path);
}

export function manifest(opts: ManifestOptions): ClipSource {
  const format = opts.format ?? manifestFormat(opts.path);
  const folder = dirname(resolve(opts.path));
  const source = opts.source ?? "manifest";
  const tag = `${source}:${basename(opts.path)}`;
  const { skips } = opts;

  async function* refs(epoch: number): AsyncGenerator<ClipRef> {
    let index = 0;
    for await (const raw of rowsOf(opts.path, format)) {
      const row = "error" in raw ? raw : manifestRow(raw.values);
      if ("error" in row) {
        skips.record(
          tag,
          "bad-row",
          `${opts.path} ${raw.at}: ${row.error}. Fix or delete the row; it was skipped.`,
          { item: `${opts.path} ${raw.at}`, pass: epoch },
        );
        continue;
      }
      const path = isAbsolute(row.path) ? row.path : resolve(folder, row.path);
      if (opts.checkFiles !== false && !(await isFile(path))) {
        skips.record(
          tag,
          "missing-file",
          `${opts.path} ${raw.at}: no file ${path} (paths are relative to the manifest's folder); skipped.`,
          { item: path, pass: epoch },
        );
        continue;
      }
      yield {
        source,
        id: row.id ?? row.path,
        path,
        start: row.start,
        end: row.end,
        index: index++,
        epoch,
        captions: row.text !== undefined ? [{ start: row.start, end: row.end, text: row.text }] : [],
        labels: row.labels,
      };
    }
  }

  return { name: source, refs };
}
