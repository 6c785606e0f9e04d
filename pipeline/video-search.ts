/**
 * `vatt index` and `vatt search`: text-to-video search over a folder of videos.
 *
 * Indexing embeds every clip-long window of every video (pipeline/embedder.ts, the evaluation's decoding and centre
 * crops) into an embedding index (sinks/embedding-index.ts: Parquet parts plus an HNSW graph once it is large).
 * It works a few files at a time, each batch one appended part, so an interrupted indexing keeps what was done;
 * indexing a folder again embeds only the files that are new or changed. A video that cannot be read is counted and
 * skipped (and tried again on the next indexing).
 *
 * Searching embeds the query with the model that built the index (recorded in it) and returns the best windows.
 */
import { readdir, stat } from "node:fs/promises";
import { extname, join, relative, resolve } from "node:path";
import { SkipLog } from "../core/skips.js";
import {
  appendRows,
  createEmbeddingIndex,
  type FileStamp,
  filesToEmbed,
  type IndexRows,
  openEmbeddingIndex,
  type SearchEngine,
  type SearchHit,
  searchEmbeddingIndex,
} from "../sinks/embedding-index.js";
import { loadVatt, type Vatt } from "./embedder.js";

/** Video files an index reads (by extension, case-insensitive). */
export const INDEXED_EXTENSIONS = [".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"];

export interface IndexOptions {
  /** A run directory, checkpoint or `vatt export` folder. */
  model: string;
  videos: string;
  out: string;
  /** Seconds between window starts (default: one clip's length, windows side by side). */
  hop?: number;
  /** Files embedded per appended part (default 16). */
  filesPerPart?: number;
  skips?: SkipLog;
  onProgress?: (p: { files: number; of: number; rows: number }) => void;
}

export interface IndexResult {
  /** Video files found, and those embedded this time (new or changed). */
  found: number;
  embedded: number;
  rows: number;
  /** Rows the index holds now (superseded ones left out). */
  live: number;
  skips: SkipLog;
}

/** Every video file under `dir` (recursively), sorted, with its size and modification time. */
export async function videoFiles(dir: string): Promise<FileStamp[]> {
  const top = await stat(dir).catch(() => undefined);
  if (!top?.isDirectory())
    throw new Error(`--videos '${dir}' is not a folder: give the folder of videos to index`);
  const found: FileStamp[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (INDEXED_EXTENSIONS.includes(extname(entry.name).toLowerCase())) {
        const s = await stat(path).catch(() => undefined);
        if (s?.isFile()) found.push({ file: resolve(path), mtimeMs: s.mtimeMs, size: s.size });
      }
    }
  };
  await walk(dir);
  return found.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** Embeds the new and changed videos of `o.videos` into the index at `o.out` (made when absent). */
export async function indexVideos(o: IndexOptions): Promise<IndexResult> {
  const skips = o.skips ?? new SkipLog();
  const stamps = await videoFiles(o.videos);
  if (stamps.length === 0)
    throw new Error(
      `no videos under '${o.videos}' (looked for ${INDEXED_EXTENSIONS.join(" ")}): give the folder that holds them`,
    );
  const m = await loadVatt(o.model);
  try {
    const g = m.inputs;
    const index = await createEmbeddingIndex(
      o.out,
      { id: resolve(o.model), preset: g.preset },
      { video_vt: g.vtDim, video_va: g.vaDim },
    );
    const todo = filesToEmbed(index, stamps);
    const per = o.filesPerPart ?? 16;
    let rows = 0;
    for (let at = 0; at < todo.length; at += per) {
      const part = todo.slice(at, at + per);
      const batch: IndexRows = { ids: [], files: [], starts: [], ends: [], vectors: {} };
      const vt: Float32Array[] = [];
      const va: Float32Array[] = [];
      const done: FileStamp[] = [];
      for (const stamp of part) {
        const windows = await windowsOf(m, stamp.file, o.hop, skips);
        if (!windows) continue;
        const name = relative(resolve(o.videos), stamp.file);
        windows.forEach((w, k) => {
          batch.ids.push(`${name}#${k}`);
          batch.files.push(stamp.file);
          batch.starts.push(w.start);
          batch.ends.push(w.end);
          vt.push(w.vt!);
          va.push(w.va!);
        });
        done.push(stamp);
      }
      batch.vectors = { video_vt: concat(vt, g.vtDim), video_va: concat(va, g.vaDim) };
      rows += await appendRows(index, batch, done);
      o.onProgress?.({ files: Math.min(at + per, todo.length), of: todo.length, rows });
    }
    return { found: stamps.length, embedded: todo.length, rows, live: index.live, skips };
  } finally {
    await m.close();
  }
}

async function windowsOf(m: Vatt, file: string, hop: number | undefined, skips: SkipLog) {
  try {
    return await m.embedVideoWindows(file, { hop });
  } catch (err) {
    skips.record("index", "unreadable", `${file}: ${(err as Error).message.split("\n")[0]}`, { item: file });
    return undefined;
  }
}

function concat(rows: Float32Array[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (const [i, r] of rows.entries()) out.set(r, i * d);
  return out;
}

export interface SearchVideoOptions {
  index: string;
  query: string;
  k?: number;
  /** The model to embed the query with (default: the one the index records). */
  model?: string;
  engine?: SearchEngine;
}

/** The `k` windows of the index that best match `query`, best first. */
export async function searchVideos(o: SearchVideoOptions): Promise<{ hits: SearchHit[]; known: string[] }> {
  const index = await openEmbeddingIndex(o.index);
  const m = await loadVatt(o.model ?? index.manifest.model.id);
  try {
    if (m.inputs.preset !== index.manifest.model.preset)
      throw new Error(
        `the index '${o.index}' holds ${index.manifest.model.preset} embeddings, the model is ${m.inputs.preset}: ` +
          "search with the model that built it",
      );
    const { known } = m.vocabularyOf(o.query);
    const [text] = await m.embedText([o.query]);
    const hits = searchEmbeddingIndex(index, text.vt!, {
      k: o.k ?? 10,
      column: "video_vt",
      engine: o.engine,
    });
    return { hits, known };
  } finally {
    await m.close();
  }
}

/** An index and the model that built it, opened once, answering many queries (what `vatt serve --index` uses). */
export async function openVideoSearch(
  indexDir: string,
  model?: string,
): Promise<{ search(text: string, k: number): Promise<SearchHit[]>; close(): Promise<void> }> {
  const index = await openEmbeddingIndex(indexDir);
  const m = await loadVatt(model ?? index.manifest.model.id);
  return {
    async search(text, k) {
      const [q] = await m.embedText([text]);
      return searchEmbeddingIndex(index, q.vt!, { k, column: "video_vt" });
    },
    close: () => m.close(),
  };
}
