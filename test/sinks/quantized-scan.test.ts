import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import { nativeSearchKernels } from "../../native/kernels.js";
import { quantizedTopK, quantizeRows, queryBytes, scanInJavaScript } from "../../sinks/quantized-scan.js";
import { exactTopK, l2NormaliseRows } from "../../sinks/vector-search.js";

function unitRows(n: number, dim: number, seed: number): Float32Array {
  const rng = randomFor(seed, 0, 0, "quantized-scan");
  return l2NormaliseRows(
    Float32Array.from({ length: n * dim }, () => rng.normal()),
    dim,
  );
}

/** The quantized score of row r, straight from the codes' definition: sum of query byte times the row's code. */
function scoreByDefinition(
  codes: Uint8Array,
  chunks: number,
  bytes: Int8Array,
  r: number,
  dim: number,
): number {
  let score = 0;
  for (let j = 0; j < dim; j++) {
    const at = ((r >> 4) * chunks + (j >> 3)) * 64 + 4 * (r & 15) + (j & 3);
    const code = (codes[at] >> (j & 4)) & 15;
    score += code * bytes[j];
  }
  return score;
}

describe("quantized scan (4-bit codes, rescored in float32)", () => {
  it("codes hold each value to within half a step, and padding rows and dimensions are zero", () => {
    const dim = 13; // not a multiple of 8: the last chunk is padded
    const n = 37; // not a multiple of 16: the last group is padded
    const matrix = unitRows(n, dim, 1);
    const q = quantizeRows(matrix, dim, n);
    assert.equal(q.chunks, 2);
    assert.equal(q.codes.length, 48 * 2 * 4);
    let clamped = 0;
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < dim; j++) {
        const at = ((r >> 4) * q.chunks + (j >> 3)) * 64 + 4 * (r & 15) + (j & 3);
        const code = (q.codes[at] >> (j & 4)) & 15;
        const value = q.offset[j] + q.step[j] * code;
        const x = matrix[r * dim + j];
        if (code === 0 || code === 15) clamped += Math.abs(x - value) > q.step[j] / 2 + 1e-6 ? 1 : 0;
        else
          assert.ok(Math.abs(x - value) <= q.step[j] / 2 + 1e-6, `row ${r} dim ${j}: ${x} coded as ${value}`);
      }
    }
    assert.ok(clamped <= n * dim * 0.01, `${clamped} values clamped`);
    for (let r = n; r < 48; r++) {
      for (let j = 0; j < dim; j++) {
        const at: number = ((r >> 4) * q.chunks + (j >> 3)) * 64 + 4 * (r & 15) + (j & 3);
        assert.equal(q.codes[at], 0);
      }
    }
    const bytes = queryBytes(q, matrix.subarray(0, dim));
    assert.equal(bytes.length, 16);
    assert.deepEqual(Array.from(bytes.subarray(dim)), [0, 0, 0]);
    assert.equal(Math.max(...Array.from(bytes, Math.abs)), 127);
  });

  it("every native kernel ranks as the definition does, ties to the lower row, dead rows passed over", (t) => {
    const native = nativeSearchKernels();
    if (!native) return t.skip("native kernels not built here");
    const dim = 40;
    const n = 1000;
    const matrix = unitRows(n, dim, 2);
    // Rows 500-509 repeat row 3: equal scores, so the order among them is the tie rule's.
    for (let r = 500; r < 510; r++) matrix.copyWithin(r * dim, 3 * dim, 4 * dim);
    const q = quantizeRows(matrix, dim, n);
    const alive = new Uint8Array(n).fill(1);
    alive[7] = 0;
    alive[505] = 0;
    const bytes = queryBytes(q, matrix.subarray(3 * dim, 4 * dim));
    const expected = Array.from({ length: n }, (_, r) => r)
      .filter((r) => alive[r] === 1)
      .map((r) => ({ r, s: scoreByDefinition(q.codes, q.chunks, bytes, r, dim) }))
      .sort((a, b) => b.s - a.s || a.r - b.r)
      .slice(0, 50);
    assert.deepEqual(
      Array.from(scanInJavaScript(q, bytes, alive, 50)),
      expected.map((e) => e.r),
    );
    const original = native.nibbleScanKernel();
    const tried: string[] = [];
    try {
      for (const kernel of ["avx512-vnni", "avx2", "scalar"]) {
        try {
          native.nibbleScanKernel(kernel);
        } catch {
          continue; // this CPU lacks it
        }
        tried.push(kernel);
        const rows = new Int32Array(50);
        const scores = new Int32Array(50);
        assert.equal(native.nibbleScanTop(q.codes, n, bytes, alive, rows, scores), 50);
        assert.deepEqual(
          Array.from(rows),
          expected.map((e) => e.r),
          kernel,
        );
        assert.deepEqual(
          Array.from(scores),
          expected.map((e) => e.s),
          kernel,
        );
        // Fewer rows than k: all of them, and no more.
        const few = new Int32Array(10);
        assert.equal(native.nibbleScanTop(q.codes, 5, bytes, null, few, new Int32Array(10)), 5);
      }
    } finally {
      native.nibbleScanKernel(original);
    }
    assert.ok(tried.includes("scalar"));
    assert.throws(() => native.nibbleScanKernel("sse9"), /expected avx512-vnni, avx2 or scalar/);
    assert.throws(() =>
      native.nibbleScanTop(q.codes, n + 100, bytes, null, new Int32Array(1), new Int32Array(1)),
    );
  });

  it("finds the exact top 10 of random unit vectors, with exact scores", () => {
    const dim = 64;
    const n = 20_000;
    const matrix = unitRows(n, dim, 3);
    const q = quantizeRows(matrix, dim, n);
    const queries = unitRows(50, dim, 4);
    let found = 0;
    for (let i = 0; i < 50; i++) {
      const query = queries.subarray(i * dim, (i + 1) * dim);
      const exact = exactTopK(matrix, dim, query, 10);
      const got = quantizedTopK(q, matrix, query, 10);
      const truth = new Set(exact.rows);
      found += Array.from(got.rows).filter((r) => truth.has(r)).length;
      for (const [rank, row] of got.rows.entries()) {
        let dot = 0;
        for (let j = 0; j < dim; j++) dot += matrix[row * dim + j] * query[j];
        assert.ok(Math.abs(dot - got.scores[rank]) < 1e-5);
      }
    }
    assert.ok(found / 500 >= 0.99, `recall@10 ${found / 500}`);
  });
});
