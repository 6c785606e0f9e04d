/**
 * The embedding map (the paper's Figures 3-4) and the similarity histograms (Figure 5) from a file written by
 * `vatt embed` (sinks/embed-writer.ts: id, source, clip, start, end, video_va, video_vt, audio_va, text_vt):
 * video and text points of S_vt (or video and audio points of S_va) laid out together in 2-D by UMAP on
 * L2-normalised vectors (so distance follows cosine), seeded, computed once per file version and cached.
 */
import { readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { type Table, tableFromIPC } from "apache-arrow";
import { ParquetFile } from "parquet-wasm";
import { UMAP } from "umap-js";
import { randomForRun } from "../../core/random.js";

export type MapSpace = "vt" | "va";

export interface EmbeddingRows {
  ids: string[];
  sources: string[];
  starts: number[];
  ends: number[];
  /** A label column when the file has one (label, labels or concept). */
  labels?: string[];
  vectors: Partial<
    Record<"video_va" | "video_vt" | "audio_va" | "text_vt", { dim: number; data: Float32Array }>
  >;
}

export interface MapPointData {
  x: number;
  y: number;
  kind: "video" | "text" | "audio";
  /** Row in the file. */
  row: number;
  id: string;
  source: string;
  start: number;
  end: number;
  /** The concept / class when known (a label column, or the synthetic dataset's truth), else "unknown". */
  concept: string;
}

export interface SimilarityHistogram {
  lo: number;
  hi: number;
  positive: number[];
  negative: number[];
  /** The two kinds compared, e.g. "video-text". */
  pair: string;
}

export interface EmbeddingMap {
  file: string;
  space: MapSpace;
  items: number;
  points: MapPointData[];
  histogram?: SimilarityHistogram;
  seconds: number;
}

/** (id, start, end) -> concept / class name, when the dataset says. */
export type Labeller = (id: string, start: number, end: number) => string | undefined;

async function readTable(file: string): Promise<Table> {
  const ext = extname(file).toLowerCase();
  if (ext === ".arrow") return tableFromIPC(await readFile(file));
  if (ext === ".parquet") {
    const pq = await ParquetFile.fromFile(new Blob([await readFile(file)]));
    return tableFromIPC((await pq.read()).intoIPCStream());
  }
  throw new Error(`${file}: an embeddings file is .arrow or .parquet (written by 'vatt embed --out')`);
}

/** Reads the rows of an embeddings file into plain arrays. */
export async function readEmbeddingRows(file: string): Promise<EmbeddingRows> {
  const table = await readTable(file);
  const col = (name: string) => table.getChild(name);
  if (!col("id")) throw new Error(`${file}: no 'id' column; is this a file written by 'vatt embed'?`);
  const rows: EmbeddingRows = {
    ids: [...col("id")!].map(String),
    sources: col("source") ? [...col("source")!].map(String) : table.toArray().map(() => ""),
    starts: col("start") ? [...col("start")!].map(Number) : [],
    ends: col("end") ? [...col("end")!].map(Number) : [],
    vectors: {},
  };
  const labelColumn = col("label") ?? col("labels") ?? col("concept");
  if (labelColumn) rows.labels = [...labelColumn].map((v) => (Array.isArray(v) ? v.join("+") : String(v)));
  for (const name of ["video_va", "video_vt", "audio_va", "text_vt"] as const) {
    const c = col(name);
    if (!c) continue;
    const dim = (c.type as { listSize: number }).listSize;
    const data = new Float32Array(table.numRows * dim);
    let r = 0;
    for (const v of c) {
      data.set(v.toArray() as Float32Array, r * dim);
      r++;
    }
    rows.vectors[name] = { dim, data };
  }
  return rows;
}

/** Concepts of the synthetic datasets: `synth.json` in the dataset folder says which is on screen when. */
export async function synthLabeller(datasetRoot: string): Promise<Labeller | undefined> {
  const text = await readFile(join(datasetRoot, "synth.json"), "utf8").catch(() => undefined);
  if (!text) return undefined;
  const truth = JSON.parse(text) as {
    concepts: string[];
    videos: { id: string; segments: { start: number; end: number; concepts: number[] }[] }[];
  };
  const byId = new Map(truth.videos.map((v) => [v.id, v.segments]));
  return (id, start, end) => {
    const segments = byId.get(id);
    if (!segments) return undefined;
    const mid = (start + end) / 2;
    const seg = segments.find((s) => s.start <= mid && mid < s.end) ?? segments[0];
    if (!seg) return undefined;
    return seg.concepts.length ? seg.concepts.map((c) => truth.concepts[c]).join("+") : "nothing";
  };
}

function normalise(data: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < data.length / dim; r++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += data[r * dim + k] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dim; k++) out[r * dim + k] = data[r * dim + k] * inv;
  }
  return out;
}

function rowIsZero(data: Float32Array, dim: number, r: number): boolean {
  for (let k = 0; k < dim; k++) if (data[r * dim + k] !== 0) return false;
  return true;
}

/** 2-D layout of unit vectors: UMAP (seeded), or the first two coordinates for fewer than 4 points. */
export function layout2d(vectors: number[][], seed: number): number[][] {
  if (vectors.length < 4) return vectors.map((v) => [v[0] ?? 0, v[1] ?? 0]);
  const rng = randomForRun(seed, "serve:umap");
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.max(2, Math.min(15, vectors.length - 1)),
    minDist: 0.1,
    random: () => rng.next(),
  });
  return umap.fit(vectors);
}

/**
 * Cosine similarities of true pairs (row i's two embeddings) and of other pairs (row i with row j != i, at most
 * `maxNegatives` of them, spread evenly), in `bins` bins over [-1, 1].
 */
export function similarityHistogram(
  a: Float32Array,
  b: Float32Array,
  dim: number,
  rows: number[],
  bins = 40,
  maxNegatives = 200_000,
): { positive: number[]; negative: number[] } {
  const positive = new Array<number>(bins).fill(0);
  const negative = new Array<number>(bins).fill(0);
  const bin = (s: number) => Math.min(bins - 1, Math.max(0, Math.floor(((s + 1) / 2) * bins)));
  const dot = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < dim; k++) s += a[i * dim + k] * b[j * dim + k];
    return s;
  };
  const n = rows.length;
  const stride = Math.max(1, Math.ceil((n * (n - 1)) / maxNegatives));
  let pair = 0;
  for (const i of rows) positive[bin(dot(i, i))]++;
  for (const i of rows) {
    for (const j of rows) {
      if (i === j) continue;
      if (pair++ % stride === 0) negative[bin(dot(i, j))]++;
    }
  }
  return { positive, negative };
}

/** Computes the map of one space of an embeddings file. */
export async function computeEmbeddingMap(
  file: string,
  space: MapSpace,
  o: { seed?: number; labeller?: Labeller } = {},
): Promise<EmbeddingMap> {
  const started = performance.now();
  const rows = await readEmbeddingRows(file);
  const [first, second, secondKind] =
    space === "vt"
      ? (["video_vt", "text_vt", "text"] as const)
      : (["video_va", "audio_va", "audio"] as const);
  const v = rows.vectors[first];
  if (!v) throw new Error(`${file}: no ${first} column, so there is no ${space} map to draw`);
  const w = rows.vectors[second];
  const n = rows.ids.length;
  const unitV = normalise(v.data, v.dim);
  const unitW = w ? normalise(w.data, w.dim) : undefined;
  const vectors: number[][] = [];
  const meta: Omit<MapPointData, "x" | "y">[] = [];
  const withSecond: number[] = [];
  for (let r = 0; r < n; r++) {
    const base = {
      row: r,
      id: rows.ids[r],
      source: rows.sources[r] ?? "",
      start: rows.starts[r] ?? 0,
      end: rows.ends[r] ?? 0,
      concept:
        rows.labels?.[r] ?? o.labeller?.(rows.ids[r], rows.starts[r] ?? 0, rows.ends[r] ?? 0) ?? "unknown",
    };
    vectors.push(Array.from(unitV.subarray(r * v.dim, (r + 1) * v.dim)));
    meta.push({ ...base, kind: "video" });
    if (unitW && w && !rowIsZero(w.data, w.dim, r)) {
      withSecond.push(r);
      vectors.push(Array.from(unitW.subarray(r * w.dim, (r + 1) * w.dim)));
      meta.push({ ...base, kind: secondKind });
    }
  }
  const xy = layout2d(vectors, o.seed ?? 0);
  const points = meta.map((m, i) => ({ ...m, x: xy[i][0], y: xy[i][1] }));
  const map: EmbeddingMap = { file, space, items: n, points, seconds: 0 };
  if (unitW && w && withSecond.length >= 2) {
    map.histogram = {
      lo: -1,
      hi: 1,
      pair: `video-${secondKind}`,
      ...similarityHistogram(unitV, unitW, v.dim, withSecond),
    };
  }
  map.seconds = (performance.now() - started) / 1000;
  return map;
}

/** Maps by (file, size, mtime, space): a file rewritten by a new `vatt embed` gets a new layout. */
export class EmbeddingMapCache {
  private readonly maps = new Map<string, Promise<EmbeddingMap>>();
  constructor(private readonly o: { seed?: number; labeller?: Labeller } = {}) {}

  async get(file: string, space: MapSpace): Promise<EmbeddingMap> {
    const s = await stat(file);
    const key = `${file}\0${s.size}\0${s.mtimeMs}\0${space}`;
    let map = this.maps.get(key);
    if (!map) {
      map = computeEmbeddingMap(file, space, this.o);
      this.maps.set(key, map);
      map.catch(() => this.maps.delete(key));
    }
    return map;
  }
}
