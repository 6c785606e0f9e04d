import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import { nativeKernelStatus, nativeSgemm } from "../../native/kernels.js";

const own = nativeSgemm();
const skip = own ? false : `native kernels not built or off: ${nativeKernelStatus.reason ?? "VATT_NATIVE=0"}`;

/** op(A) @ op(B) per batch in float64, the reference the kernels must match within float rounding. */
function reference(
  a: Float32Array,
  b: Float32Array,
  batchA: number,
  batchB: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * m * n);
  for (let s = 0; s < batch; s++) {
    const ao = batchA === 1 ? 0 : s * m * k;
    const bo = batchB === 1 ? 0 : s * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          sum += a[ao + (transA ? p * m + i : i * k + p)] * b[bo + (transB ? j * k + p : p * n + j)];
        }
        out[s * m * n + i * n + j] = sum;
      }
    }
  }
  return out;
}

/** A bound on sum_p |a_ip * b_pj|: the scale of the rounding error an output may carry. */
function magnitude(a: Float32Array, b: Float32Array, k: number): number {
  let peakA = 0;
  for (const x of a) peakA = Math.max(peakA, Math.abs(x));
  let peakB = 0;
  for (const x of b) peakB = Math.max(peakB, Math.abs(x));
  return k * peakA * peakB;
}

const kernels = own
  ? ["avx512", "avx2", "c"].filter((name) => {
      try {
        own.sgemmKernel(name);
        return true;
      } catch {
        return false;
      }
    })
  : [];

describe("native/sgemm.c against a float64 reference", { skip }, () => {
  // Edges on every side of the 12 x 32 / 6 x 16 / 4 x 16 tiles, K across the 256 block, each transpose, batches.
  const cases: [number, number, number, number, number, boolean, boolean][] = [
    // batchA, batchB, m, n, k, transA, transB
    [1, 1, 1, 1, 1, false, false],
    [1, 1, 13, 33, 7, false, false],
    [1, 1, 37, 71, 300, true, false],
    [1, 1, 50, 17, 513, false, true],
    [1, 1, 25, 40, 64, true, true],
    [3, 3, 12, 32, 20, false, true],
    [4, 1, 9, 18, 30, false, false],
    [4, 1, 9, 18, 30, true, false],
    [1, 3, 11, 5, 19, false, false],
    [1, 1, 64, 96, 1, false, false],
    [2, 2, 7, 9, 0, false, false],
  ];
  const rng = randomFor(0, 0, 0, "test/sgemm");
  for (const [batchA, batchB, m, n, k, transA, transB] of cases) {
    it(`${batchA}x${m}x${k} @ ${batchB}x${k}x${n}, transA ${transA}, transB ${transB}, every kernel and 1-2 threads`, () => {
      const a = Float32Array.from({ length: batchA * m * k }, () => rng.uniform(-1, 1));
      const b = Float32Array.from({ length: batchB * k * n }, () => rng.uniform(-1, 1));
      const want = reference(a, b, batchA, batchB, m, n, k, transA, transB);
      const tolerance = 4 * 2 ** -24 * Math.sqrt(Math.max(k, 1)) * magnitude(a, b, k) + 1e-7;
      const dimsA = batchA > 1 ? [batchA, transA ? k : m, transA ? m : k] : [transA ? k : m, transA ? m : k];
      const dimsB = batchB > 1 ? [batchB, transB ? n : k, transB ? k : n] : [transB ? n : k, transB ? k : n];
      const batch = Math.max(batchA, batchB);
      const dimsOut = batch > 1 ? [batch, m, n] : [m, n];
      const before = own!.sgemmKernel();
      try {
        let first: Float32Array | undefined;
        for (const kernel of kernels) {
          own!.sgemmKernel(kernel);
          for (const threads of [1, 2]) {
            const out = new Float32Array(batch * m * n).fill(Number.NaN);
            own!.sgemm(a, dimsA, b, dimsB, transA, transB, out, dimsOut, threads);
            for (let i = 0; i < out.length; i++) {
              assert.ok(
                Math.abs(out[i] - want[i]) <= tolerance,
                `${kernel}, ${threads} threads: out[${i}] = ${out[i]}, want ${want[i]}`,
              );
            }
            // The thread count splits columns only: every output is summed the same way.
            if (threads === 2 && first) assert.deepEqual(out, first);
            first = out;
          }
          first = undefined;
        }
      } finally {
        own!.sgemmKernel(before);
      }
    });
  }

  it("is picked for this processor, and refuses dims that make no product", () => {
    assert.ok(kernels.includes(own!.sgemmKernel()));
    const a = new Float32Array(6);
    assert.throws(
      () => own!.sgemm(a, [2, 3], a, [2, 3], false, false, new Float32Array(4), [2, 2], 1),
      /do not make a product/,
    );
    assert.throws(
      () => own!.sgemm(a, [2, 3], a, [3, 2], false, false, new Float32Array(4), [2, 2], 0),
      TypeError,
    );
    assert.throws(() => own!.sgemmKernel("sse9"), /unknown kernel/);
  });
});
