/**
 * An index of clip embeddings in one folder, for `vatt index` / `vatt search`:
 *
 *   index.json                what is in the folder (below); rewritten atomically after every step
 *   part-00000.parquet ...    the rows, one part per append: id, file, start, end, and one column per embedding
 *                             space (video_vt, video_va, ...: list<float32>, L2-normalised)
 *   ann.<column>.usearch      an HNSW graph over one column's rows (sinks/vector-search.ts), once the index is big
 *                             enough for it to pay (GRAPH_FROM rows); a cache of the rows, rebuilt when missing
 *
 * index.json holds the vector widths, the model id and preset, the parts (rows, SHA-256), and per source file its
 * mtime, size and the part holding its rows, so a grown folder embeds only new or changed files. A changed file's
 * new rows supersede its old ones (kept on disk, skipped in memory and removed from the graphs).
 *
 * Resumable: each `appendRows` writes a complete part under a temporary name, renames it, then rewrites
 * index.json. An interrupted indexing keeps every part index.json lists; a part written but not yet listed is
 * simply written again. A graph behind the rows (interrupted before it was saved) catches up when opened.
 *
 * Engines, picked by live rows unless `engine` says (figures from bench/search.ts, 256-d, one core):
 * - exact (sinks/vector-search.ts `exactTopK`), below EXACT_BELOW: float32 brute force, 2-3 ms a query per
 *   10,000 rows, so under ~6 ms there, with nothing to build.
 * - quantized (sinks/quantized-scan.ts), below GRAPH_FROM: a native pass over 4-bit codes of every row, its best
 *   256 rescored in float32; ~5 ms median at a million rows with recall@10 1.0 even on random vectors, codes made
 *   in memory at the first search (~2.5 s a million rows), nothing on disk.
 * - graph (HNSW, usearch), from GRAPH_FROM: sublinear where the scan's linear cost would pass ~20 ms, on libraries
 *   with the structure real embeddings have (recall 0.998 at 100,000 clustered rows; on random vectors a graph
 *   finds under half the true top 10 at a million, which is why it is not used below). Built and saved by appends
 *   once the index reaches GRAPH_FROM rows: ~0.2 CPU s per 1,000 rows.
 */

import { openAsBlob } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { ParquetFile } from "parquet-wasm";
import type { Index } from "usearch";
import type { EmbeddingColumn } from "./embed-writer.js";
import { checkDims, type Dims, type IndexRows, rowBatch, rowSchema, rowsOfTable } from "./index-parts.js";
import { sha256File, writeParquetFile } from "./parquet-writer.js";
import { type QuantizedRows, quantizedTopK, quantizeRows } from "./quantized-scan.js";
import {
  type AnnSettings,
  addToAnn,
  approximateTopK,
  DEFAULT_ANN_SETTINGS,
  exactTopK,
  l2NormaliseRows,
  loadAnnIndex,
  newAnnIndex,
  type TopK,
} from "./vector-search.js";

export type { Dims, IndexRows } from "./index-parts.js";

/** Live rows from which `engine: "auto"` scans 4-bit codes instead of every float. */
export const EXACT_BELOW = 20_000;
/** Live rows from which `engine: "auto"` searches the HNSW graph, and appends build and save one. */
export const GRAPH_FROM = 4_000_000;

const FORMAT = "vatt-embedding-index";
const VERSION = 1;
const MANIFEST = "index.json";

/** What produced the vectors: an index only ever holds one model's embeddings. */
export interface ModelStamp {
  id: string;
  preset: string;
}

/** A source file as last embedded. */
export interface FileStamp {
  file: string;
  mtimeMs: number;
  size: number;
}

/** index.json. */
export interface IndexManifest {
  format: typeof FORMAT;
  version: number;
  model: ModelStamp;
  dims: Dims;
  /** The columns that get an HNSW graph. */
  annColumns: EmbeddingColumn[];
  parts: { file: string; rows: number; sha256: string }[];
  /** Rows in all parts, superseded ones included (graph keys are row numbers in part order). */
  count: number;
  files: Record<string, { mtimeMs: number; size: number; part: number }>;
  /** Per column: the graph file, the rows [0, rows) it was built over, its settings and checksum. */
  ann: Partial<
    Record<EmbeddingColumn, { file: string; rows: number; sha256: string; settings: AnnSettings }>
  >;
}

/** Rows to append: whole files at a time; vectors row-major [rows, dim] per column (normalised on the way in). */
/** An open index: the manifest and every row in memory (vectors contiguous per column, for exact search). */
export interface EmbeddingIndex {
  dir: string;
  manifest: IndexManifest;
  ids: string[];
  files: string[];
  starts: number[];
  ends: number[];
  /** Per column: [capacity, dim] row-major; rows [0, count) are filled. */
  vectors: Partial<Record<EmbeddingColumn, Float32Array>>;
  /** 1 for a live row, 0 for one superseded by a newer embedding of its file. */
  alive: Uint8Array;
  live: number;
  /** Graphs loaded or built so far, per column. */
  anns: Partial<Record<EmbeddingColumn, Index>>;
  annSettings: AnnSettings;
  /** 4-bit codes of the rows, per column, made at the first quantized search (and again after an append). */
  quantized: Partial<Record<EmbeddingColumn, QuantizedRows>>;
  /** Live rows from which "auto" leaves exact search (default EXACT_BELOW). */
  exactBelow: number;
  /** Live rows from which "auto" searches the graph and appends keep the graphs saved (default GRAPH_FROM). */
  graphFrom: number;
}

/** How an index is opened: HNSW settings (search-time ones apply to saved graphs too) and the engine switch. */
export interface OpenOptions {
  ann?: AnnSettings;
  exactBelow?: number;
  graphFrom?: number;
}

export interface SearchHit {
  id: string;
  file: string;
  start: number;
  end: number;
  /** Inner product of the unit vectors: cosine similarity, in [-1, 1]. */
  score: number;
}

export type SearchEngine = "auto" | "exact" | "quantized" | "graph";

export interface SearchOptions {
  k: number;
  /** Default: video_vt when present (text -> video), else the first column. */
  column?: EmbeddingColumn;
  engine?: SearchEngine;
}

/** The engine `auto` picks for `live` rows. */
export function chooseEngine(
  live: number,
  engine: SearchEngine = "auto",
  exactBelow = EXACT_BELOW,
  graphFrom = GRAPH_FROM,
): Exclude<SearchEngine, "auto"> {
  if (engine !== "auto") return engine;
  return live < exactBelow ? "exact" : live < graphFrom ? "quantized" : "graph";
}

const partName = (i: number) => `part-${String(i).padStart(5, "0")}.parquet`;
const annName = (column: EmbeddingColumn) => `ann.${column}.usearch`;

function fail(dir: string, what: string): Error {
  return new Error(`embedding index '${dir}': ${what}`);
}

function emptyIndex(dir: string, manifest: IndexManifest, opts: OpenOptions): EmbeddingIndex {
  return {
    dir,
    manifest,
    ids: [],
    files: [],
    starts: [],
    ends: [],
    vectors: Object.fromEntries(checkDims(manifest.dims).map((c) => [c, new Float32Array(0)])),
    alive: new Uint8Array(0),
    live: 0,
    anns: {},
    annSettings: opts.ann ?? DEFAULT_ANN_SETTINGS,
    quantized: {},
    exactBelow: opts.exactBelow ?? EXACT_BELOW,
    graphFrom: opts.graphFrom ?? GRAPH_FROM,
  };
}

async function writeManifest(index: EmbeddingIndex): Promise<void> {
  const path = join(index.dir, MANIFEST);
  await writeFile(`${path}.partial`, `${JSON.stringify(index.manifest, null, 1)}\n`);
  await rename(`${path}.partial`, path);
}

/**
 * Opens the index in `dir`, or creates it (folder and index.json) when there is none. An existing index built
 * by another model or with other vector widths is an error: embeddings of two models do not share a space.
 */
export async function createEmbeddingIndex(
  dir: string,
  model: ModelStamp,
  dims: Dims,
  opts: OpenOptions & { annColumns?: EmbeddingColumn[] } = {},
): Promise<EmbeddingIndex> {
  const columns = checkDims(dims);
  const existing = await stat(join(dir, MANIFEST)).catch(() => undefined);
  if (existing) {
    const index = await openEmbeddingIndex(dir, opts);
    const m = index.manifest;
    if (m.model.id !== model.id || m.model.preset !== model.preset) {
      throw fail(
        dir,
        `holds embeddings of model ${m.model.id} (${m.model.preset}), not ${model.id} (${model.preset}); ` +
          "index into a new folder",
      );
    }
    if (JSON.stringify(m.dims) !== JSON.stringify(Object.fromEntries(columns.map((c) => [c, dims[c]])))) {
      throw fail(
        dir,
        `holds vectors ${JSON.stringify(m.dims)}, not ${JSON.stringify(dims)}; index into a new folder`,
      );
    }
    return index;
  }
  const annColumns = opts.annColumns ?? (columns.includes("video_vt") ? ["video_vt"] : [columns[0]]);
  for (const c of annColumns)
    if (!columns.includes(c)) throw fail(dir, `annColumns names ${c}, which has no dims`);
  await mkdir(dir, { recursive: true });
  const manifest: IndexManifest = {
    format: FORMAT,
    version: VERSION,
    model,
    dims: Object.fromEntries(columns.map((c) => [c, dims[c]])),
    annColumns,
    parts: [],
    count: 0,
    files: {},
    ann: {},
  };
  const index = emptyIndex(dir, manifest, opts);
  await writeManifest(index);
  return index;
}

async function readManifest(dir: string): Promise<IndexManifest> {
  const path = join(dir, MANIFEST);
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw fail(
      dir,
      err.code === "ENOENT"
        ? `${MANIFEST} is missing: not an embedding index (create one with \`vatt index\`)`
        : `cannot read ${MANIFEST}: ${err.message}`,
    );
  });
  let m: IndexManifest;
  try {
    m = JSON.parse(text) as IndexManifest;
  } catch (err) {
    throw fail(dir, `${MANIFEST} is not valid JSON (${(err as Error).message}); re-index into a new folder`);
  }
  if (
    m?.format !== FORMAT ||
    !Array.isArray(m.parts) ||
    typeof m.files !== "object" ||
    typeof m.dims !== "object"
  ) {
    throw fail(dir, `${MANIFEST} is not an embedding index manifest (format '${m?.format}')`);
  }
  if (m.version !== VERSION)
    throw fail(dir, `${MANIFEST} is version ${m.version}; this build reads ${VERSION}`);
  return m;
}

/** Reads one part into the index, a row group at a time (memory: one group, not the part). Returns its rows. */
async function readPart(index: EmbeddingIndex, part: IndexManifest["parts"][number]): Promise<number> {
  const path = join(index.dir, part.file);
  const where = `embedding index '${index.dir}': ${part.file}`;
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new Error(`${where} is listed in ${MANIFEST} but missing; re-index into a new folder`);
  let file: ParquetFile;
  try {
    file = await ParquetFile.fromFile(await openAsBlob(path));
  } catch (err) {
    throw new Error(`${where} is not a readable Parquet file (${String(err)}); re-index into a new folder`);
  }
  try {
    let rows = 0;
    const groups = file.metadata().numRowGroups();
    for (let g = 0; g < groups; g++) {
      const table = tableFromIPC((await file.read({ rowGroups: [g] })).intoIPCStream());
      pushRows(index, rowsOfTable(table, index.manifest.dims, where));
      rows += table.numRows;
    }
    if (rows !== part.rows)
      throw new Error(`${where} holds ${rows} rows, ${MANIFEST} says ${part.rows}; re-index`);
    return rows;
  } finally {
    file.free();
  }
}

/** Makes room for `extra` more rows in the in-memory arrays (capacity doubles: appends stay linear). */
function reserve(index: EmbeddingIndex, extra: number): void {
  const count = index.ids.length;
  const needed = count + extra;
  if (index.alive.length >= needed) return;
  const capacity = Math.max(needed, index.alive.length * 2, 1024);
  const alive = new Uint8Array(capacity);
  alive.set(index.alive.subarray(0, count));
  index.alive = alive;
  for (const c of checkDims(index.manifest.dims)) {
    const dim = index.manifest.dims[c]!;
    const grown = new Float32Array(capacity * dim);
    grown.set(index.vectors[c]!.subarray(0, count * dim));
    index.vectors[c] = grown;
  }
}

/** Adds rows (already checked and normalised) to memory, all alive. */
function pushRows(index: EmbeddingIndex, rows: IndexRows): void {
  const n = rows.ids.length;
  reserve(index, n);
  const at = index.ids.length;
  for (const c of checkDims(index.manifest.dims)) {
    index.vectors[c]!.set(rows.vectors[c]!, at * index.manifest.dims[c]!);
  }
  index.alive.fill(1, at, at + n);
  index.live += n;
  for (let i = 0; i < n; i++) {
    index.ids.push(rows.ids[i]);
    index.files.push(rows.files[i]);
    index.starts.push(rows.starts[i]);
    index.ends.push(rows.ends[i]);
  }
}

/** Marks dead every row of `files` before row `before`. Returns the rows marked. */
function supersede(index: EmbeddingIndex, files: Set<string>, before: number): number[] {
  const dead: number[] = [];
  for (let r = 0; r < before; r++) {
    if (index.alive[r] === 1 && files.has(index.files[r])) {
      index.alive[r] = 0;
      dead.push(r);
    }
  }
  index.live -= dead.length;
  return dead;
}

/**
 * Opens the index in `dir`: reads every part into memory and each graph whose checksum matches index.json
 * (usearch crashes the process on a corrupt file, so a graph is never loaded unchecked). A graph that lags the
 * rows catches up here. `ann` sets the HNSW search settings (expansionSearch is not stored in the graph file).
 */
export async function openEmbeddingIndex(dir: string, opts: OpenOptions = {}): Promise<EmbeddingIndex> {
  const manifest = await readManifest(dir);
  const columns = checkDims(manifest.dims);
  const index = emptyIndex(dir, manifest, opts);
  const partOfRow: number[] = [];
  for (const [p, part] of manifest.parts.entries()) {
    const rows = await readPart(index, part);
    for (let i = 0; i < rows; i++) partOfRow.push(p);
  }
  if (index.ids.length !== manifest.count) {
    throw fail(dir, `the parts hold ${index.ids.length} rows, ${MANIFEST} says ${manifest.count}; re-index`);
  }
  // A row is live when its file's newest embedding is in the row's part.
  for (let r = 0; r < index.ids.length; r++) {
    if (manifest.files[index.files[r]]?.part !== partOfRow[r]) {
      index.alive[r] = 0;
      index.live -= 1;
    }
  }
  for (const c of columns) {
    const saved = manifest.ann[c];
    if (!saved) continue;
    const path = join(dir, saved.file);
    const exists = await stat(path).catch(() => undefined);
    if (!exists) continue; // a cache: rebuilt on the next append or approximate search
    if ((await sha256File(path)) !== saved.sha256) {
      throw fail(
        dir,
        `${saved.file} does not match its checksum in ${MANIFEST}: delete it and it is rebuilt`,
      );
    }
    // The build settings are the graph's; only the search-time expansion may differ from the saved one.
    const settings = { ...saved.settings, expansionSearch: index.annSettings.expansionSearch };
    const ann = loadAnnIndex(path, manifest.dims[c]!, settings);
    // Catch up with rows appended after the graph was saved, and drop rows superseded since.
    const deadKeys: bigint[] = [];
    for (let r = 0; r < saved.rows; r++) if (index.alive[r] === 0) deadKeys.push(BigInt(r));
    if (deadKeys.length > 0) ann.remove(BigUint64Array.from(deadKeys));
    addToAnn(ann, index.vectors[c]!, manifest.dims[c]!, saved.rows, index.ids.length, index.alive);
    index.anns[c] = ann;
  }
  return index;
}

/** The files of `stamps` that are new to the index or changed (mtime or size) since they were embedded. */
export function filesToEmbed(index: EmbeddingIndex, stamps: FileStamp[]): FileStamp[] {
  return stamps.filter((s) => {
    const seen = index.manifest.files[s.file];
    return !seen || seen.mtimeMs !== s.mtimeMs || seen.size !== s.size;
  });
}

function checkRows(index: EmbeddingIndex, rows: IndexRows, stamps: FileStamp[]): void {
  const where = `append to '${index.dir}'`;
  const n = rows.ids.length;
  for (const key of ["files", "starts", "ends"] as const) {
    if (rows[key].length !== n)
      throw new RangeError(`${where}: ${key} has ${rows[key].length} entries, ids ${n}`);
  }
  const stamped = new Set(stamps.map((s) => s.file));
  for (const f of rows.files) {
    if (!stamped.has(f))
      throw new RangeError(`${where}: rows of ${f} come without its FileStamp (mtime, size)`);
  }
  for (const c of checkDims(index.manifest.dims)) {
    const dim = index.manifest.dims[c]!;
    const v = rows.vectors[c];
    if (!v || v.length !== n * dim) {
      throw new RangeError(
        `${where}: ${c} needs ${n} x ${dim} floats, got ${v ? `${v.length} (${v.length / n} a row)` : "none"}`,
      );
    }
  }
}

/**
 * Appends the rows of whole files (`stamps`: each file's mtime and size, also for files that gave no rows) as one
 * new part, then brings the graphs up to date once the index is big enough to search approximately. Vectors are
 * copied and L2-normalised; earlier rows of the same files are superseded. Returns the rows appended.
 */
export async function appendRows(
  index: EmbeddingIndex,
  rows: IndexRows,
  stamps: FileStamp[],
): Promise<number> {
  checkRows(index, rows, stamps);
  const m = index.manifest;
  const columns = checkDims(m.dims);
  const vectors: Partial<Record<EmbeddingColumn, Float32Array>> = {};
  for (const c of columns) {
    vectors[c] = l2NormaliseRows(Float32Array.from(rows.vectors[c]!), m.dims[c]!, `${index.dir}: ${c}`);
  }
  const normalised = { ...rows, vectors };
  // Files that gave no rows are stamped with part -1 (no part is written for them): not embedded again.
  let p = -1;
  if (rows.ids.length > 0) {
    p = m.parts.length;
    const file = partName(p);
    const batches = async function* () {
      yield rowBatch(rowSchema(m.dims), normalised);
    };
    const written = await writeParquetFile(join(index.dir, file), batches());
    m.parts.push({ file, rows: written.rows, sha256: written.sha256 });
  }
  const before = index.ids.length;
  const dead = supersede(index, new Set(stamps.map((s) => s.file)), before);
  pushRows(index, normalised);
  m.count = index.ids.length;
  for (const s of stamps) m.files[s.file] = { mtimeMs: s.mtimeMs, size: s.size, part: p };
  await writeManifest(index);
  index.quantized = {};
  if (index.live >= index.graphFrom || Object.keys(m.ann).length > 0) {
    for (const c of m.annColumns) await updateAnn(index, c, before, dead);
    await writeManifest(index);
  }
  return rows.ids.length;
}

/** Adds rows [from, count) to the column's graph (building it over all live rows if there is none), saves it. */
async function updateAnn(index: EmbeddingIndex, column: EmbeddingColumn, from: number, dead: number[]) {
  const dim = index.manifest.dims[column]!;
  const matrix = index.vectors[column]!;
  let ann = index.anns[column];
  if (ann) {
    if (dead.length > 0) ann.remove(BigUint64Array.from(dead, (r) => BigInt(r)));
    addToAnn(ann, matrix, dim, from, index.ids.length, index.alive);
  } else {
    ann = newAnnIndex(dim, index.annSettings);
    addToAnn(ann, matrix, dim, 0, index.ids.length, index.alive);
    index.anns[column] = ann;
  }
  const file = annName(column);
  const path = join(index.dir, file);
  await rm(`${path}.partial`, { force: true });
  ann.save(`${path}.partial`);
  const sha256 = await sha256File(`${path}.partial`);
  await rename(`${path}.partial`, path);
  index.manifest.ann[column] = { file, rows: index.ids.length, sha256, settings: index.annSettings };
}

/** The column's graph: loaded, or built in memory now (an index below the size where appends build one). */
function annFor(index: EmbeddingIndex, column: EmbeddingColumn): Index {
  let ann = index.anns[column];
  if (!ann) {
    ann = newAnnIndex(index.manifest.dims[column]!, index.annSettings);
    addToAnn(ann, index.vectors[column]!, index.manifest.dims[column]!, 0, index.ids.length, index.alive);
    index.anns[column] = ann;
  }
  return ann;
}

/**
 * The k clips nearest `query` (a vector of the column's space; normalised here) by cosine similarity, best
 * first. `engine` "auto" picks by live rows (exact, quantized, graph: the header says when).
 */
export function searchEmbeddingIndex(
  index: EmbeddingIndex,
  query: Float32Array,
  opts: SearchOptions,
): SearchHit[] {
  const m = index.manifest;
  const columns = checkDims(m.dims);
  const column = opts.column ?? (columns.includes("video_vt") ? "video_vt" : columns[0]);
  const dim = m.dims[column];
  if (dim === undefined) {
    throw fail(index.dir, `has no ${column} vectors (it holds ${columns.join(", ")}); search one of those`);
  }
  if (query.length !== dim) {
    throw fail(
      index.dir,
      `the query has ${query.length} dimensions, the index's ${column} vectors ${dim}: ` +
        "embed the query with the model that built the index",
    );
  }
  if (!Number.isInteger(opts.k) || opts.k <= 0) {
    throw new RangeError(`search: k must be a positive integer (results wanted), got ${opts.k}`);
  }
  const unit = l2NormaliseRows(Float32Array.from(query), dim, "search: the query");
  const matrix = index.vectors[column]!.subarray(0, index.ids.length * dim);
  const engine = chooseEngine(index.live, opts.engine, index.exactBelow, index.graphFrom);
  let top: TopK;
  if (engine === "exact") {
    top = exactTopK(matrix, dim, unit, opts.k, index.alive);
  } else if (engine === "quantized") {
    index.quantized[column] ??= quantizeRows(matrix, dim, index.ids.length);
    top = quantizedTopK(index.quantized[column], matrix, unit, opts.k, index.alive);
  } else {
    top = approximateTopK(annFor(index, column), matrix, dim, unit, opts.k);
  }
  return Array.from(top.rows, (r, i) => ({
    id: index.ids[r],
    file: index.files[r],
    start: index.starts[r],
    end: index.ends[r],
    score: top.scores[i],
  }));
}
