/**
 * Nearest neighbours by inner product over L2-normalised embeddings (so inner product = cosine similarity), two
 * ways:
 *
 * - exact: a brute-force pass over one contiguous row-major Float32Array [rows, dim], keeping the best k in a
 *   size-k min-heap (a partial selection: O(rows log k), never a full sort of the scores).
 * - approximate: an HNSW graph from `usearch` (native, SIMD). Its vectors are stored at half precision (f16:
 *   measured ~4x faster to build than f32 in the shipped build, same recall: at 30,000 vectors f32 took ~300 us
 *   an insert, f16 ~80 us, on 2 cores), and the k candidates it returns are rescored against the f32 rows, so
 *   both engines report the same scores and order for the same rows.
 *
 * Both return row numbers (positions in the matrix) best first; ties go to the lower row, so results are
 * deterministic. Keys in the HNSW graph are row numbers.
 */
import { Index, MetricKind, ScalarKind } from "usearch";

/** The best rows for one query, best first. */
export interface TopK {
  rows: Int32Array;
  scores: Float32Array;
}

/** The HNSW settings (usearch's names in brackets). */
export interface AnnSettings {
  /** Graph edges a node keeps per layer [connectivity] (M in the HNSW paper; layer 0 keeps 2M). */
  connectivity: number;
  /** Candidate list while inserting [expansion_add] (efConstruction): build time against graph quality. */
  expansionAdd: number;
  /** Candidate list while searching [expansion_search] (ef): latency against recall. Not stored in the file. */
  expansionSearch: number;
  /** Storage precision of the graph's copy of the vectors. */
  quantization: "f32" | "f16" | "bf16" | "i8";
}

/**
 * Defaults, from bench/search.ts on 2 cores (see its header for the figures): M 16 and efConstruction 64 build a
 * million 256-d vectors in about two minutes; ef 128 answers in well under a millisecond.
 */
export const DEFAULT_ANN_SETTINGS: AnnSettings = {
  connectivity: 16,
  expansionAdd: 64,
  expansionSearch: 128,
  quantization: "f16",
};

function checkDims(what: string, length: number, dim: number): number {
  if (!Number.isInteger(dim) || dim <= 0)
    throw new RangeError(`${what}: dimension must be a positive integer`);
  if (length % dim !== 0) {
    throw new RangeError(`${what}: ${length} floats is not a whole number of ${dim}-d vectors`);
  }
  return length / dim;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k <= 0) {
    throw new RangeError(`k must be a positive integer (the number of results wanted), got ${k}`);
  }
}

/**
 * Scales each row of a row-major [n, dim] block to unit length, in place, and returns it. A row that is all
 * zeros or holds a NaN/Infinity has no direction: that is an error naming the row (`what` says where it is from).
 */
export function l2NormaliseRows(vectors: Float32Array, dim: number, what = "vectors"): Float32Array {
  const n = checkDims(what, vectors.length, dim);
  for (let r = 0; r < n; r++) {
    const o = r * dim;
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += vectors[o + j] * vectors[o + j];
    if (!(sum > 0) || !Number.isFinite(sum)) {
      throw new RangeError(
        `${what}: row ${r} ${sum === 0 ? "is all zeros" : "holds NaN or Infinity"}; it cannot be normalised`,
      );
    }
    const inv = 1 / Math.sqrt(sum);
    for (let j = 0; j < dim; j++) vectors[o + j] *= inv;
  }
  return vectors;
}

/** Inner product of row `row` of `matrix` with `query` (4 accumulators: lets V8 pipeline the multiply-adds). */
export function dotRow(matrix: Float32Array, row: number, query: Float32Array, dim: number): number {
  const o = row * dim;
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let j = 0;
  for (; j + 3 < dim; j += 4) {
    a0 += matrix[o + j] * query[j];
    a1 += matrix[o + j + 1] * query[j + 1];
    a2 += matrix[o + j + 2] * query[j + 2];
    a3 += matrix[o + j + 3] * query[j + 3];
  }
  for (; j < dim; j++) a0 += matrix[o + j] * query[j];
  return a0 + a1 + a2 + a3;
}

/**
 * The best k of a stream of (row, score), in a min-heap whose root is the worst kept: a new score costs one
 * comparison unless it beats the root. "Worse" is a lower score, or an equal score on a higher row.
 */
export class TopKHeap {
  readonly rows: Int32Array;
  readonly scores: Float32Array;
  size = 0;

  constructor(readonly k: number) {
    this.rows = new Int32Array(k);
    this.scores = new Float32Array(k);
  }

  private worse(a: number, b: number): boolean {
    const sa = this.scores[a];
    const sb = this.scores[b];
    return sa < sb || (sa === sb && this.rows[a] > this.rows[b]);
  }

  /** The score a candidate must beat to enter (-Infinity while the heap is not full). */
  threshold(): number {
    return this.size < this.k ? Number.NEGATIVE_INFINITY : this.scores[0];
  }

  offer(row: number, score: number): void {
    if (this.size < this.k) {
      let i = this.size++;
      this.rows[i] = row;
      this.scores[i] = score;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.worse(i, parent)) break;
        this.swap(i, parent);
        i = parent;
      }
      return;
    }
    if (score < this.scores[0] || (score === this.scores[0] && row > this.rows[0])) return;
    this.rows[0] = row;
    this.scores[0] = score;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.size && this.worse(l, m)) m = l;
      if (r < this.size && this.worse(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const row = this.rows[a];
    const score = this.scores[a];
    this.rows[a] = this.rows[b];
    this.scores[a] = this.scores[b];
    this.rows[b] = row;
    this.scores[b] = score;
  }

  /** The kept rows, best first (a sort of k items, not of all scores). */
  result(): TopK {
    const order = Array.from({ length: this.size }, (_, i) => i).sort(
      (a, b) => this.scores[b] - this.scores[a] || this.rows[a] - this.rows[b],
    );
    return {
      rows: Int32Array.from(order, (i) => this.rows[i]),
      scores: Float32Array.from(order, (i) => this.scores[i]),
    };
  }
}

/**
 * The k rows of `matrix` ([rows, dim], row-major) with the highest inner product with `query`, best first.
 * `alive`, when given, has one byte a row: rows with 0 are skipped (superseded rows of an index). Fewer than k
 * results when fewer rows are alive.
 */
export function exactTopK(
  matrix: Float32Array,
  dim: number,
  query: Float32Array,
  k: number,
  alive?: Uint8Array,
): TopK {
  const n = checkDims("exact search: the stored vectors", matrix.length, dim);
  if (query.length !== dim) {
    throw new RangeError(`exact search: the query has ${query.length} dimensions, the vectors ${dim}`);
  }
  checkK(k);
  const heap = new TopKHeap(Math.min(k, n));
  if (heap.k === 0) return heap.result();
  for (let row = 0; row < n; row++) {
    if (alive && alive[row] === 0) continue;
    const score = dotRow(matrix, row, query, dim);
    if (score >= heap.threshold()) heap.offer(row, score);
  }
  return heap.result();
}

const QUANTIZATION: Record<AnnSettings["quantization"], ScalarKind> = {
  f32: ScalarKind.F32,
  f16: ScalarKind.F16,
  bf16: ScalarKind.BF16,
  i8: ScalarKind.I8,
};

/** An empty HNSW graph for `dim`-d unit vectors under inner product. */
export function newAnnIndex(dim: number, settings: AnnSettings = DEFAULT_ANN_SETTINGS): Index {
  return new Index({
    dimensions: dim,
    metric: MetricKind.IP,
    quantization: QUANTIZATION[settings.quantization],
    connectivity: settings.connectivity,
    expansion_add: settings.expansionAdd,
    expansion_search: settings.expansionSearch,
    multi: false,
  });
}

/**
 * Adds rows [from, to) of `matrix` to the graph under their row numbers as keys, on `threads` native threads
 * (0: all cores). Rows whose `alive` byte is 0 are left out.
 */
export function addToAnn(
  ann: Index,
  matrix: Float32Array,
  dim: number,
  from: number,
  to: number,
  alive?: Uint8Array,
  threads = 0,
): void {
  const rows: number[] = [];
  for (let r = from; r < to; r++) if (alive?.[r] !== 0) rows.push(r);
  if (rows.length === 0) return;
  const contiguous = rows.length === to - from;
  const vectors = contiguous
    ? matrix.subarray(from * dim, to * dim)
    : Float32Array.from(
        { length: rows.length * dim },
        (_, i) => matrix[rows[Math.floor(i / dim)] * dim + (i % dim)],
      );
  ann.add(
    BigUint64Array.from(rows, (r) => BigInt(r)),
    vectors,
    threads,
  );
}

/**
 * Opens a saved graph with the given search settings (usearch does not store expansion_search in the file, so
 * the value given here is the one used). A file usearch cannot read is an error naming it.
 */
export function loadAnnIndex(path: string, dim: number, settings: AnnSettings = DEFAULT_ANN_SETTINGS): Index {
  const ann = newAnnIndex(dim, settings);
  try {
    ann.load(path);
  } catch (err) {
    throw new Error(
      `${path}: not a readable usearch index (${(err as Error).message}); delete it and it is rebuilt from the rows`,
    );
  }
  if (ann.dimensions() !== dim) {
    throw new Error(`${path}: holds ${ann.dimensions()}-d vectors, the index ${dim}-d; delete it to rebuild`);
  }
  return ann;
}

/**
 * The k best rows for `query` from the graph, rescored exactly against `matrix` (f32) and sorted by that score,
 * so scores match `exactTopK`. Keys the graph returns beyond the matrix are an error (a graph from another index).
 */
export function approximateTopK(
  ann: Index,
  matrix: Float32Array,
  dim: number,
  query: Float32Array,
  k: number,
): TopK {
  if (query.length !== dim) {
    throw new RangeError(`approximate search: the query has ${query.length} dimensions, the vectors ${dim}`);
  }
  checkK(k);
  const n = matrix.length / dim;
  const want = Math.min(k, ann.size());
  const heap = new TopKHeap(Math.max(1, want));
  if (want === 0) return { rows: new Int32Array(0), scores: new Float32Array(0) };
  // One query on one thread: usearch would otherwise start a thread per core for a single task. A few more
  // candidates than k (the graph visits expansion_search nodes anyway) so that rows tied with the k-th are among
  // them, offered in row order as exactTopK does: equal scores go to the earlier row in every engine.
  const matches = ann.search(query, Math.min(Math.max(2 * k, 16), ann.size()), 1);
  const rows = Int32Array.from(matches.keys, (key) => Number(key)).sort();
  for (const row of rows) {
    if (row >= n) throw new Error(`approximate search: the graph holds row ${row}, the index only ${n} rows`);
    const score = dotRow(matrix, row, query, dim);
    if (score >= heap.threshold()) heap.offer(row, score);
  }
  return heap.result();
}
