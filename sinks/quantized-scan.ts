/**
 * The embedding index's quantized engine: a pass over every stored vector, at 4 bits a dimension, then the best
 * candidates rescored exactly in float32.
 *
 * Why a scan and not only a graph: on vectors with no structure (random unit vectors, the hardest case) an HNSW
 * graph over a million 256-d rows found under half of the true top 10 even at expansion_search 4096, while this scan
 * reads 128 MB (128 bytes a row) in one memory-bound pass, the same for any data, and needs no build: codes are
 * made from the rows when the index is first searched this way (about a second a million rows).
 *
 * - Codes: per dimension, a uniform 16-level grid over [mean - 4 sd, mean + 4 sd] of the stored values (cut to
 *   their min and max), so a dimension's step is about half its spread's standard deviation. Values outside clamp.
 * - Query: its weights query[j] * step[j] (the offsets add the same to every row, so they do not change the order),
 *   scaled to signed bytes.
 * - Score: sum over j of queryByte[j] * code[j], in 32-bit integers (native/nibble_scan.c, AVX-512 VNNI / AVX2 /
 *   plain C; the same loop in JavaScript where the native library is missing).
 * - The best `candidates` rows by that score are rescored against the float32 rows: the quantization error of a
 *   score (about 0.01 on unit vectors) is far below the gap between the 10th and the 256th best of a million
 *   (about 0.05 on random 256-d vectors), so the true top k are among them.
 *
 * Layout (native/nibble_scan.h): dimensions in chunks of 8, rows in groups of 16 (both padded with zero codes);
 * group g's chunk c is 64 bytes, bytes 4 i .. 4 i + 3 holding row 16 g + i's dimensions 8 c .. 8 c + 3 in their low
 * nibbles and 8 c + 4 .. 8 c + 7 in their high ones: each 32-bit lane of a vector register then sums one row.
 */
import { nativeSearchKernels } from "../native/kernels.js";
import { dotRow, type TopK, TopKHeap } from "./vector-search.js";

/** Stored rows as 4-bit codes, with what turns a code back into a value: offset[j] + step[j] * code. */
export interface QuantizedRows {
  dim: number;
  rows: number;
  /** Chunks of 8 dimensions: a row takes 4 bytes of each. */
  chunks: number;
  codes: Uint8Array;
  offset: Float32Array;
  step: Float32Array;
}

/** Candidates rescored in float32 unless the caller says otherwise: enough for k = 10 at a million random rows. */
export const DEFAULT_CANDIDATES = 256;

const LEVELS = 15;
/** The grid spans this many standard deviations either side of a dimension's mean. */
const SPREAD = 4;

/** Where dimension j of row r is: its byte, and 0 for the low nibble or 4 for the high one. */
function position(chunks: number, r: number, j: number): [byte: number, shift: number] {
  return [((r >> 4) * chunks + (j >> 3)) * 64 + 4 * (r & 15) + (j & 3), j & 4];
}

/** Codes for the first `rows` rows of `matrix` ([rows, dim], row-major). */
export function quantizeRows(matrix: Float32Array, dim: number, rows: number): QuantizedRows {
  const chunks = Math.ceil(dim / 8);
  const sum = new Float64Array(dim);
  const squares = new Float64Array(dim);
  const min = new Float32Array(dim).fill(Number.POSITIVE_INFINITY);
  const max = new Float32Array(dim).fill(Number.NEGATIVE_INFINITY);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let j = 0; j < dim; j++) {
      const x = matrix[o + j];
      sum[j] += x;
      squares[j] += x * x;
      if (x < min[j]) min[j] = x;
      if (x > max[j]) max[j] = x;
    }
  }
  const offset = new Float32Array(dim);
  const step = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    const mean = rows > 0 ? sum[j] / rows : 0;
    const sd = rows > 0 ? Math.sqrt(Math.max(0, squares[j] / rows - mean * mean)) : 0;
    const lo = rows > 0 ? Math.max(min[j], mean - SPREAD * sd) : 0;
    const hi = rows > 0 ? Math.min(max[j], mean + SPREAD * sd) : 0;
    offset[j] = lo;
    step[j] = hi > lo ? (hi - lo) / LEVELS : 1;
  }
  // Rounding as floor(x + 0.5) after the clamp, and the positions of row 0 reused with a row's offset added: this
  // loop runs rows * dim times (a quarter of a billion at a million rows).
  const inverse = Float32Array.from(step, (v) => 1 / v);
  const bias = Float32Array.from(offset, (lo, j) => 0.5 - lo * inverse[j]);
  const firstRow = Int32Array.from({ length: dim }, (_, j) => position(chunks, 0, j)[0]);
  const shifts = Uint8Array.from({ length: dim }, (_, j) => j & 4);
  const codes = new Uint8Array(Math.ceil(rows / 16) * 16 * chunks * 4);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const at = (r >> 4) * chunks * 64 + 4 * (r & 15);
    for (let j = 0; j < dim; j++) {
      const scaled = matrix[o + j] * inverse[j] + bias[j];
      const code = scaled <= 0 ? 0 : scaled >= LEVELS ? LEVELS : Math.floor(scaled);
      codes[at + firstRow[j]] |= code << shifts[j];
    }
  }
  return { dim, rows, chunks, codes, offset, step };
}

/** The query's weights on the codes, as signed bytes in dimension order (padding zero). */
export function queryBytes(q: QuantizedRows, query: Float32Array): Int8Array {
  const weights = new Float32Array(q.chunks * 8);
  let largest = 0;
  for (let j = 0; j < q.dim; j++) {
    weights[j] = query[j] * q.step[j];
    largest = Math.max(largest, Math.abs(weights[j]));
  }
  const scale = largest > 0 ? 127 / largest : 0;
  return Int8Array.from(weights, (w) => Math.round(w * scale));
}

/**
 * The same pass as native/nibble_scan.c, in JavaScript: for machines where the native library did not build. The
 * best k rows by quantized score, best first.
 */
export function scanInJavaScript(
  q: QuantizedRows,
  bytes: Int8Array,
  alive: Uint8Array | undefined,
  k: number,
): Int32Array {
  const heap = new TopKHeap(k);
  for (let r = 0; r < q.rows; r++) {
    if (alive && alive[r] === 0) continue;
    let score = 0;
    for (let c = 0; c < q.chunks; c++) {
      const at = position(q.chunks, r, 8 * c)[0];
      for (let t = 0; t < 4; t++) {
        const x = q.codes[at + t];
        score += (x & 15) * bytes[8 * c + t] + (x >> 4) * bytes[8 * c + 4 + t];
      }
    }
    if (score >= heap.threshold()) heap.offer(r, score);
  }
  return heap.result().rows;
}

/**
 * The k rows nearest `query` (unit length, `q.dim` values): the best `candidates` by the quantized score, rescored
 * against `matrix` in float32 and sorted by that score (ties to the lower row), so the scores are exact ones.
 */
export function quantizedTopK(
  q: QuantizedRows,
  matrix: Float32Array,
  query: Float32Array,
  k: number,
  alive?: Uint8Array,
  candidates = DEFAULT_CANDIDATES,
): TopK {
  if (query.length !== q.dim) {
    throw new RangeError(`quantized search: the query has ${query.length} dimensions, the vectors ${q.dim}`);
  }
  const wanted = Math.min(Math.max(k, candidates), q.rows);
  const bytes = queryBytes(q, query);
  const native = nativeSearchKernels();
  let rows: Int32Array;
  if (native) {
    rows = new Int32Array(wanted);
    const found = native.nibbleScanTop(q.codes, q.rows, bytes, alive ?? null, rows, new Int32Array(wanted));
    rows = rows.subarray(0, found);
  } else {
    rows = scanInJavaScript(q, bytes, alive, wanted);
  }
  const heap = new TopKHeap(Math.min(k, rows.length));
  if (heap.k === 0) return heap.result();
  // In row order, as exactTopK offers them, so that equal scores resolve the same way (to the earlier row).
  for (const row of rows.sort()) {
    const score = dotRow(matrix, row, query, q.dim);
    if (score >= heap.threshold()) heap.offer(row, score);
  }
  return heap.result();
}

/** Which scan runs here: the native kernel's name ("avx512-vnni", "avx2", "scalar") or "javascript". */
export function quantizedScanKernel(): string {
  return nativeSearchKernels()?.nibbleScanKernel() ?? "javascript";
}
