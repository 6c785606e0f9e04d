/**
 * Fast kernels for the wasm backend. tfjs-backend-wasm runs only untransposed, batch-1 products on XNNPACK; every
 * product with a transpose or a batch (all of the backward pass, all of attention) falls to a scalar loop. Here the
 * `BatchMatMul` and `_FusedMatMul` kernels of 'wasm' are re-registered to run on a native GEMM (ONNX Runtime's, from
 * onnxruntime-node, synchronous, reading and writing the wasm heap in place), with batches folded into rows where
 * the layout allows.
 *
 * `enableFastKernels` installs them; `disableFastKernels` restores the stock kernels. When the native GEMM cannot be
 * loaded nothing is replaced and the reason is reported (the fused optimiser, which needs no library, stays on).
 * VATT_FAST_KERNELS=0 turns the fast path off for
 * `selectBackend`; VATT_THREADS sets the native thread count (default: see `fastThreads`).
 */
import os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { registerFusedOps, unregisterFusedOps } from "./fused-kernels.js";
import { gemmPolicyFromEnv, withOwnSgemm } from "./native-gemm.js";
import { loadOnnxGemm, type OnnxGemm } from "./onnx-gemm.js";
import { FAST_KERNELS, REPLACEMENTS } from "./replacements.js";
import { ThreadGovernor, type ThreadGovernorOptions } from "./thread-governor.js";
import { type EngineInternals, installed } from "./wasm.js";

export {
  type EncoderBlockOptions,
  fusedAttention,
  fusedBatchNorm,
  fusedContrastiveLoss,
  fusedDense,
  fusedDropout,
  fusedEncoderBlock,
  fusedGelu,
  fusedLayerNorm,
  fusedOpsReady,
  fusedRmsNorm,
  tensorWrittenInPlace,
} from "./fused-ops.js";
export { planProduct, scatteredRowsOf } from "./replacements.js";
export type { WasmBackendLike } from "./wasm.js";

export interface FastKernelsInfo {
  /** True when the native matrix kernels are registered for the wasm backend. */
  enabled: boolean;
  /**
   * True when the fused in-place optimiser update (model/fast/optim.ts) is on: whenever the fast path was asked
   * for on wasm, even if the native library is missing (it needs none).
   */
  fusedOptimizer: boolean;
  /** Which engine runs the products: "onnxruntime" or "stock" (the backend's own kernels). */
  engine: "onnxruntime" | "stock";
  /** Native threads used by the products (1 for the stock single-threaded wasm build). */
  threads: number;
  /** Kernels replaced. */
  kernels: string[];
  /** Why the fast path is off, when it is. */
  reason?: string;
  /** onnxruntime-node's version, when used. */
  version?: string;
  /** How products reach ONNX Runtime (model/fast/onnx-gemm.ts `OnnxGemm.caller`), when used. */
  caller?: OnnxGemm["caller"];
  /**
   * native/sgemm.c's microkernel and the policy (model/fast/native-gemm.ts, VATT_GEMM) when some products run on
   * it, e.g. "avx512 (auto)"; absent when every product goes to ONNX Runtime.
   */
  sgemm?: string;
}

/** Loaded GEMMs by thread count and policy: sessions are kept across disable/enable (a benchmark toggles them). */
const loadedGemms = new Map<string, OnnxGemm & { sgemm?: string }>();
const OFF: FastKernelsInfo = {
  enabled: false,
  fusedOptimizer: false,
  engine: "stock",
  threads: 1,
  kernels: [],
};
let info: FastKernelsInfo = OFF;

/** VATT_FAST_KERNELS=0 (or "false"/"off") turns the fast path off; anything else leaves it on. */
export function fastKernelsFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.VATT_FAST_KERNELS?.trim().toLowerCase();
  return !(v === "0" || v === "false" || v === "off" || v === "no");
}

/**
 * Thread count: explicit, else VATT_THREADS, else a default from the cores Node sees: 1 on machines of up to two
 * cores, else all cores. On two cores a training run's second core decodes clips, and a second native thread
 * competes with it (measured under such load, 1024^3 ran at 80-196 GFLOP/s on one thread against 72-159 on two); on
 * an otherwise idle machine two threads pay for large products (bench model: the Transformer block 23.8 vs 35.4 ms).
 */
export function fastThreads(requested?: number, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = Number.parseInt(env.VATT_THREADS ?? "", 10);
  const cores = os.availableParallelism();
  const n = requested ?? (Number.isFinite(fromEnv) ? fromEnv : cores <= 2 ? 1 : cores);
  return Math.max(1, Math.floor(n));
}

export function fastKernelsInfo(): FastKernelsInfo {
  return { ...info, kernels: [...info.kernels] };
}

/** The native GEMM when the fast kernels are on (benchmarks measure it directly). */
export function fastGemm(): OnnxGemm | undefined {
  return info.enabled ? installed.gemm : undefined;
}

let savedTensorsPatch:
  | { engine: EngineInternals; original: EngineInternals["saveTensorsForBackwardMode"] }
  | undefined;

/**
 * The engine saves every input and output a gradient will need by cloning it: an Identity kernel run (a copy on
 * stock wasm) plus a tape node for the clone, ~1,000 of each per tiny step. Under one tape the saved tensors are
 * only read by gradient functions, never differentiated through, so sharing the memory (a reference count, as
 * Reshape does) gives the same gradients without the kernel runs and tape nodes; under nested tapes (a gradient
 * of a gradient) the clones are kept, since the outer tape differentiates through them. Installed with the fast kernels; anything
 * unexpected (another tfjs version, a backend without reference counts) keeps the engine's own way.
 */
function shareSavedTensors(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (savedTensorsPatch || typeof engine.saveTensorsForBackwardMode !== "function") return;
  if (typeof engine.makeTensorFromTensorInfo !== "function" || !engine.state?.tensorInfo) return;
  const original = engine.saveTensorsForBackwardMode;
  engine.saveTensorsForBackwardMode = function share(this: EngineInternals, tensors: tf.Tensor[]) {
    // Nested tapes (higher-order gradients) differentiate through the saved copies: keep the engine's clones.
    if (this.state.gradientDepth > 1) return original.call(this, tensors);
    const infos = tensors.map((t) => this.state.tensorInfo.get(t.dataId));
    if (tensors.some((t, i) => t.dtype === "string" || typeof infos[i]?.backend.incRef !== "function")) {
      return original.call(this, tensors);
    }
    return tensors.map((t, i) => {
      const backend = infos[i]!.backend;
      backend.incRef!(t.dataId);
      return this.keep(
        this.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }, backend),
      );
    });
  };
  savedTensorsPatch = { engine, original };
}

function restoreSavedTensors(): void {
  if (!savedTensorsPatch) return;
  savedTensorsPatch.engine.saveTensorsForBackwardMode = savedTensorsPatch.original;
  savedTensorsPatch = undefined;
}

/**
 * Registers the fast kernels for 'wasm' (call after the wasm backend is registered; it need not be active).
 * Returns what is in force; on failure the stock kernels stay and `reason` says why.
 */
export function enableFastKernels(opts: { threads?: number } = {}): FastKernelsInfo {
  const threads = fastThreads(opts.threads);
  const policy = gemmPolicyFromEnv();
  const key = `${threads}/${policy}`;
  if (info.enabled && installed.gemm !== undefined && installed.gemm === loadedGemms.get(key)) {
    return fastKernelsInfo();
  }
  disableFastKernels();
  for (const name of FAST_KERNELS) {
    if (!tf.getKernel(name, "wasm")) {
      info = { ...OFF, fusedOptimizer: true, reason: `wasm kernel ${name} missing` };
      return fastKernelsInfo();
    }
  }
  let g = loadedGemms.get(key);
  if (!g) {
    const loaded = loadOnnxGemm(threads);
    if (!loaded.gemm) {
      info = { ...OFF, fusedOptimizer: true, reason: loaded.reason };
      return fastKernelsInfo();
    }
    g = withOwnSgemm(loaded.gemm, policy);
    loadedGemms.set(key, g);
  }
  installed.gemm = g;
  const stock = new Map<string, tf.KernelConfig>();
  installed.stock = stock;
  for (const name of FAST_KERNELS) {
    const config = tf.getKernel(name, "wasm") as tf.KernelConfig;
    stock.set(name, config);
    tf.unregisterKernel(name, "wasm");
    // The stock setup stays: it prepares the fallback when the backend initialises after this call.
    tf.registerKernel({ ...config, kernelFunc: REPLACEMENTS[name] });
  }
  shareSavedTensors();
  registerFusedOps();
  info = {
    enabled: true,
    fusedOptimizer: true,
    engine: "onnxruntime",
    threads,
    kernels: [...FAST_KERNELS],
    version: installed.gemm.version,
    caller: installed.gemm.caller,
    ...(g.sgemm ? { sgemm: g.sgemm } : {}),
  };
  return fastKernelsInfo();
}

/**
 * Moves the products and attention to `threads` native threads while the fast kernels stay installed (a GEMM per
 * thread count is loaded once and kept). Results do not change: every kernel splits rows and columns over its
 * threads, never a sum. A no-op when the fast kernels are off.
 */
export function setFastThreads(threads: number): FastKernelsInfo {
  if (!info.enabled || threads === info.threads) return fastKernelsInfo();
  const policy = gemmPolicyFromEnv();
  const key = `${threads}/${policy}`;
  let g = loadedGemms.get(key);
  if (!g) {
    const loaded = loadOnnxGemm(threads);
    if (!loaded.gemm) return fastKernelsInfo();
    g = withOwnSgemm(loaded.gemm, policy);
    loadedGemms.set(key, g);
  }
  installed.gemm = g;
  info = { ...info, threads };
  return fastKernelsInfo();
}

/**
 * The governor of a training run's threads (model/fast/thread-governor.ts) where it can help: the fast kernels on,
 * more cores than the run's products use, and no thread count pinned by VATT_THREADS or the caller.
 */
export function threadGovernorFor(
  fast: FastKernelsInfo,
  onSwitch?: ThreadGovernorOptions["onSwitch"],
  env: NodeJS.ProcessEnv = process.env,
): ThreadGovernor | undefined {
  const cores = os.availableParallelism();
  if (!fast.enabled || env.VATT_THREADS?.trim() || fast.threads >= cores) return undefined;
  return new ThreadGovernor({ few: fast.threads, many: cores, use: setFastThreads, onSwitch });
}

/** Puts the stock wasm kernels back (a no-op when the fast ones are not installed). */
export function disableFastKernels(): void {
  restoreSavedTensors();
  unregisterFusedOps();
  if (installed.stock) {
    for (const [name, config] of installed.stock) {
      if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
      tf.registerKernel(config);
    }
    installed.stock = undefined;
  }
  installed.gemm = undefined;
  info = OFF;
}
