import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gemmPolicyFromEnv, ownWins, withOwnSgemm } from "../../../model/fast/native-gemm.js";
import type { OnnxGemm } from "../../../model/fast/onnx-gemm.js";
import { nativeKernelStatus, nativeSgemm } from "../../../native/kernels.js";

const own = nativeSgemm();
const skip = own ? false : `native kernels not built or off: ${nativeKernelStatus.reason ?? "VATT_NATIVE=0"}`;

/** A stand-in for MLAS that records the products it was given and fills the output with a marker. */
function recordingGemm(): OnnxGemm & { calls: string[] } {
  const calls: string[] = [];
  return {
    threads: 1,
    version: "test",
    caller: "c-api",
    calls,
    matmul: (_a, dimsA, _b, dimsB, transA, transB, out) => {
      calls.push(`${dimsA.join("x")} ${dimsB.join("x")} ${transA ? "A^T" : "A"} ${transB ? "B^T" : "B"}`);
      out.fill(-1);
    },
    dispose: () => {},
  };
}

describe("the GEMM policy", () => {
  it("reads VATT_GEMM, defaulting to auto", () => {
    assert.equal(gemmPolicyFromEnv({}), "auto");
    assert.equal(gemmPolicyFromEnv({ VATT_GEMM: " ORT " }), "ort");
    assert.equal(gemmPolicyFromEnv({ VATT_GEMM: "own" }), "own");
    assert.equal(gemmPolicyFromEnv({ VATT_GEMM: "fastest" }), "auto");
  });

  it("gives products with B transposed to MLAS, and large ones to ours only with the AVX-512 kernel", () => {
    assert.equal(ownWins(264, 64, 64, false, true, "avx512"), false);
    assert.equal(ownWins(1569, 3072, 768, false, false, "avx512"), true);
    assert.equal(ownWins(256, 1024, 1024, true, false, "avx512"), true);
    assert.equal(ownWins(1569, 3072, 768, false, false, "avx2"), false);
    assert.equal(ownWins(1024, 256, 256, false, false, "avx2"), true);
  });

  it("runs each product on the engine the policy names, ours exactly", { skip }, () => {
    const base = recordingGemm();
    const gemm = withOwnSgemm(base, "auto");
    const kernel = own?.sgemmKernel() ?? "";
    const [m, k, n] = [40, 24, 56];
    const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 37) % 11) - 5);
    const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 53) % 7) - 3);
    const out = new Float32Array(m * n);

    gemm.matmul(a, [m, k], b, [k, n], false, false, out, [m, n]);
    assert.equal(base.calls.length, ownWins(m, n, k, false, false, kernel) ? 0 : 1);
    // Small integers: every sum is exact in float32, so ours must give the exact product.
    for (const [i, j] of [
      [0, 0],
      [m - 1, n - 1],
      [17, 31],
    ]) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
      assert.equal(out[i * n + j], sum, `C[${i}, ${j}]`);
    }

    gemm.matmul(a, [m, k], b, [n, k], false, true, out, [m, n]);
    assert.deepEqual(base.calls.at(-1), `${m}x${k} ${n}x${k} A B^T`, "B^T goes to MLAS");
    assert.equal(out[0], -1);

    const ortOnly = withOwnSgemm(base, "ort");
    assert.equal(ortOnly, base, "the ort policy leaves MLAS alone");
  });
});
