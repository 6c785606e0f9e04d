/**
 * The packed-panel SGEMM of native/sgemm.c (AVX-512 / AVX2 / C microkernels picked at load) beside ONNX Runtime's
 * MLAS: `withOwnSgemm` wraps the ONNX Runtime GEMM so that the products the policy gives to the native kernel run
 * there and every other one keeps going to MLAS. VATT_GEMM picks the policy: "ort" (MLAS only), "own" (ours for
 * every product), "auto" (the default: ours only for the products where it measured no slower, see `ownWins`).
 */
import { nativeSgemm } from "../../native/kernels.js";
import type { OnnxGemm } from "./onnx-gemm.js";

export type GemmPolicy = "ort" | "own" | "auto";

export function gemmPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): GemmPolicy {
  const v = env.VATT_GEMM?.trim().toLowerCase();
  return v === "ort" || v === "own" ? v : "auto";
}

/**
 * Where our kernel measured no slower than MLAS, alternating product by product in one process (Zen 5 EPYC, one
 * thread). With the AVX-512 kernel: every product with B untransposed, at every size (bench model's gemmShapes,
 * three runs on a quiet machine: 1024^3 202-207 vs 198-201 GFLOP/s, 1569x768x3072 206-207 vs 199-200, 256x1024x1024
 * A^T 196-202 vs 172-175, the tiny preset's 264x64x64 190-194 vs 170-173). With B transposed the two tie on large
 * products (207-211 vs 207-214) and MLAS was 3-6 % faster on the tiny preset's shapes, so those stay on MLAS. With the
 * AVX2 or plain C kernel (not measured against MLAS at large sizes) only products of up to 1024x256x256 multiply-adds.
 * The choice depends on the shape alone, never on timings, so a run's results are the same every time.
 */
export function ownWins(
  m: number,
  n: number,
  k: number,
  _transA: boolean,
  transB: boolean,
  kernel: string,
): boolean {
  if (transB) return false;
  return kernel === "avx512" || m * n * k <= 2 ** 26;
}

/** The product's (m, n, k) from OnnxGemm.matmul's dims. */
function productSize(
  dimsA: readonly number[],
  dimsB: readonly number[],
  transA: boolean,
  transB: boolean,
): [number, number, number] {
  const a0 = dimsA[dimsA.length - 2];
  const a1 = dimsA[dimsA.length - 1];
  const b0 = dimsB[dimsB.length - 2];
  const b1 = dimsB[dimsB.length - 1];
  return [transA ? a1 : a0, transB ? b0 : b1, transA ? a0 : a1];
}

/** `base` with the policy's products on native/sgemm.c; `base` itself when the native kernel is missing or "ort". */
export function withOwnSgemm(base: OnnxGemm, policy: GemmPolicy): OnnxGemm & { sgemm?: string } {
  const own = nativeSgemm();
  if (!own || policy === "ort") return base;
  const threads = base.threads;
  const kernel = own.sgemmKernel();
  const sgemm = `${kernel} (${policy})`;
  const matmul: OnnxGemm["matmul"] = (a, dimsA, b, dimsB, transA, transB, out, dimsOut) => {
    if (policy === "own" || ownWins(...productSize(dimsA, dimsB, transA, transB), transA, transB, kernel)) {
      own.sgemm(a, dimsA, b, dimsB, transA, transB, out, dimsOut, threads);
    } else {
      base.matmul(a, dimsA, b, dimsB, transA, transB, out, dimsOut);
    }
  };
  return {
    threads,
    version: base.version,
    caller: base.caller,
    sgemm,
    matmul,
    dispose: () => base.dispose(),
  };
}
