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
import { nativeModelKernels } from "../pipeline/native.js";
import {
  type BlockAttrs,
  type BlockKind,
  blockBackward,
  blockForward,
  blockInputNames,
} from "./block-kernel.js";
import { loadOnnxGemm, type OnnxGemm } from "./fast-onnx.js";
import {
  batchNormTraining,
  batchNormTrainingGrad,
  contrastiveLoss,
  contrastiveLossGrad,
  type MatMul,
} from "./js-kernels.js";

export interface FastKernelsInfo {
  /** True when the native matrix kernels are registered for the wasm backend. */
  enabled: boolean;
  /**
   * True when the fused in-place optimiser update (model/fast-optim.ts) is on: whenever the fast path was asked
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
  /** How products reach ONNX Runtime (model/fast-onnx.ts `OnnxGemm.caller`), when used. */
  caller?: OnnxGemm["caller"];
}

const FAST_KERNELS = [
  "BatchMatMul",
  "_FusedMatMul",
  "Identity",
  "Cast",
  "Sum",
  "GatherV2",
  "ScatterNd",
] as const;

interface HeapTensorData {
  memoryOffset: number;
  refCount: number;
}
/** The parts of tfjs-backend-wasm's BackendWasm the kernels touch (its class is not exported by the package). */
export interface WasmBackendLike {
  dataIdMap: { get(dataId: object): HeapTensorData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
  wasm: { HEAPU8: Uint8Array };
}

let gemm: OnnxGemm | undefined;
/** Loaded GEMMs by thread count: sessions are kept across disable/enable (a benchmark toggles them). */
const loadedGemms = new Map<number, OnnxGemm>();
let stock: Map<string, tf.KernelConfig> | undefined;
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
  return info.enabled ? gemm : undefined;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The output of a (broadcast) batched product, or undefined when the shapes do not fit. */
interface ProductPlan {
  /** Dims handed to the GEMM (rank 2 or 3). */
  dimsA: number[];
  dimsB: number[];
  dimsOut: number[];
  transA: boolean;
  transB: boolean;
  /** tfjs's output shape. */
  outShape: number[];
}

/** Shapes as tfjs's BatchMatMul defines them: batch dims are flattened and broadcast when one of them is 1. */
export function planProduct(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): ProductPlan {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) throw new Error(`matMul needs rank >= 2, got ${aShape} and ${bShape}`);
  const [a1, a2] = [aShape[ra - 2], aShape[ra - 1]];
  const [b1, b2] = [bShape[rb - 2], bShape[rb - 1]];
  const m = transA ? a2 : a1;
  const k = transA ? a1 : a2;
  const kb = transB ? b2 : b1;
  const n = transB ? b1 : b2;
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${aShape} and ${bShape} and ` +
        `transposeA=${transA} and transposeB=${transB} must match.`,
    );
  }
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  if (!(batchA === batchB || batchA === 1 || batchB === 1)) {
    throw new Error(`matMul batch dimensions ${outerA} and ${outerB} do not broadcast`);
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const outShape = [...outer, m, n];
  const batch = Math.max(batchA, batchB);
  // A batched left operand against a shared right one, untransposed: fold the batch into rows (one big GEMM).
  if (batchA > 1 && batchB === 1 && !transA) {
    return {
      dimsA: [batchA * a1, a2],
      dimsB: [b1, b2],
      dimsOut: [batchA * m, n],
      transA,
      transB,
      outShape,
    };
  }
  return {
    dimsA: batchA > 1 ? [batchA, a1, a2] : [a1, a2],
    dimsB: batchB > 1 ? [batchB, b1, b2] : [b1, b2],
    dimsOut: batch > 1 ? [batch, m, n] : [m, n],
    transA,
    transB,
    outShape,
  };
}

/** op(a) @ op(b) on the native GEMM, into a fresh wasm-heap tensor. */
function nativeProduct(
  backend: WasmBackendLike,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transA: boolean,
  transB: boolean,
  g: OnnxGemm,
): tf.TensorInfo {
  const plan = planProduct(a.shape, b.shape, transA, transB);
  // Allocate first: malloc may grow the heap and detach views made before it.
  const out = backend.makeOutput(plan.outShape, "float32");
  const outView = backend.typedArrayFromHeap(out) as Float32Array;
  if (outView.length === 0) return out;
  const k = transA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
  if (k === 0) {
    outView.fill(0);
    return out;
  }
  const aView = backend.typedArrayFromHeap(a) as Float32Array;
  const bView = backend.typedArrayFromHeap(b) as Float32Array;
  g.matmul(aView, plan.dimsA, bView, plan.dimsB, plan.transA, plan.transB, outView, plan.dimsOut);
  return out;
}

function stockKernel(name: string): tf.KernelConfig {
  const k = stock?.get(name);
  if (!k) throw new Error(`stock wasm kernel ${name} missing`);
  return k;
}

function batchMatMulKernel(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA: boolean; transposeB: boolean };
  if (!gemm || a.dtype !== "float32" || b.dtype !== "float32") {
    return stockKernel("BatchMatMul").kernelFunc(args as never) as tf.TensorInfo;
  }
  return nativeProduct(args.backend as WasmBackendLike, a, b, !!transposeA, !!transposeB, gemm);
}

/** Runs another wasm kernel on intermediate results (the way tfjs backends compose kernels). */
function runWasmKernel(
  name: string,
  backend: unknown,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const k = tf.getKernel(name, "wasm");
  if (!k) throw new Error(`wasm kernel ${name} missing`);
  return k.kernelFunc({ inputs, backend: backend as never, attrs }) as tf.TensorInfo;
}

const ACTIVATION_KERNELS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
};

function fusedMatMulKernel(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = (args.attrs ?? {}) as {
    transposeA: boolean;
    transposeB: boolean;
    activation?: string;
    leakyreluAlpha?: number;
  };
  if (!gemm || !a || !b || a.dtype !== "float32" || b.dtype !== "float32") {
    return stockKernel("_FusedMatMul").kernelFunc(args as never) as tf.TensorInfo;
  }
  const backend = args.backend as WasmBackendLike;
  let y = nativeProduct(backend, a, b, !!attrs.transposeA, !!attrs.transposeB, gemm);
  const replace = (next: tf.TensorInfo): void => {
    backend.disposeData(y.dataId);
    y = next;
  };
  if (bias) replace(runWasmKernel("Add", backend, { a: y, b: bias }));
  const act = attrs.activation ?? "linear";
  if (act === "linear") return y;
  if (act === "prelu") {
    if (!preluActivationWeights) throw new Error("prelu activation needs its weights");
    replace(runWasmKernel("Prelu", backend, { x: y, alpha: preluActivationWeights }));
  } else if (act === "leakyrelu") {
    replace(runWasmKernel("LeakyRelu", backend, { x: y }, { alpha: attrs.leakyreluAlpha ?? 0.2 }));
  } else {
    const kernel = ACTIVATION_KERNELS[act];
    if (!kernel) throw new Error(`unsupported fused activation ${act}`);
    replace(runWasmKernel(kernel, backend, { x: y }));
  }
  return y;
}

/**
 * Identity (what tf.clone runs, and the engine for every tensor it saves for the backward pass) sharing the
 * input's memory with a reference count, as the wasm Reshape and the cpu backend's Identity do, instead of
 * copying it: the stock wasm kernel copies, ~4 ms of a 64 ms tiny step. Safe because no wasm kernel writes into
 * its inputs, and the in-place optimiser (fast-optim.ts) only writes tensors whose memory nobody else holds.
 */
function identityKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === "string") return stockKernel("Identity").kernelFunc(args as never) as tf.TensorInfo;
  (args.backend as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Cast to the dtype a tensor already has (tfjs gradients do this often) shares its memory, as Identity does. */
function castKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { dtype } = (args.attrs ?? {}) as { dtype: tf.DataType };
  if (x.dtype !== dtype || x.dtype === "string") {
    return stockKernel("Cast").kernelFunc(args as never) as tf.TensorInfo;
  }
  (args.backend as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Sum over leading axes (every bias's gradient: dy summed over the batch and token axes) adds rows natively; the
 * wasm Sum reduces only the last axis, so it transposed the whole array first. Other sums run the stock kernel.
 */
function sumKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = (args.attrs ?? {}) as { axis: number | number[]; keepDims: boolean };
  const native = nativeModelKernels();
  const rank = x.shape.length;
  const listed = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a));
  const axes = [...new Set(listed)].sort((a, b) => a - b);
  // Repeated axes are left to the stock kernel (whatever it makes of them).
  const leading =
    axes.length === listed.length && axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
  if (!native || x.dtype !== "float32" || !leading) {
    return stockKernel("Sum").kernelFunc(args as never) as tf.TensorInfo;
  }
  const b = args.backend as WasmBackendLike;
  const kept = x.shape.slice(axes.length);
  const out = b.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, "float32");
  const outView = heapFloats(b, out);
  if (outView.length > 0) native.sumLeading(heapFloats(b, x), outView);
  return out;
}

/**
 * Gather of whole rows (axis 0: an embedding lookup) copies the rows straight from the heap: the wasm kernel took
 * ~0.5 ms to pick 256 rows of the 2^16 x 64 word table, whatever the number of rows picked. Other gathers run the
 * stock kernel.
 */
function gatherKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = (args.attrs ?? {}) as { axis: number; batchDims?: number };
  const rank = x.shape.length;
  const rows = x.shape[0];
  const rows0 = rank >= 1 && (axis < 0 ? axis + rank : axis) === 0 && (batchDims ?? 0) === 0;
  if (!rows0 || indices.dtype !== "int32" || (x.dtype !== "float32" && x.dtype !== "int32")) {
    return stockKernel("GatherV2").kernelFunc(args as never) as tf.TensorInfo;
  }
  const b = args.backend as WasmBackendLike;
  const width = x.shape.slice(1).reduce((p, q) => p * q, 1);
  const out = b.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const to = b.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const from = b.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = b.typedArrayFromHeap(indices) as Int32Array;
  for (let i = 0; i < ids.length; i++) {
    const row = ids[i];
    if (!(row >= 0 && row < rows)) {
      b.disposeData(out.dataId);
      throw new RangeError(`GatherV2: index ${row} is not in [0, ${rows - 1}]`);
    }
    to.set(from.subarray(row * width, (row + 1) * width), i * width);
  }
  return out;
}

/**
 * Which rows of a row scatter's output (by its data id) can be non-zero: ascending and distinct, for the fused
 * optimiser (model/fast-optim.ts), which then reads only those rows of a word table's gradient. Entries go with
 * the data they describe.
 */
const scatteredRows = new WeakMap<object, { rows: Int32Array; width: number }>();

/** The rows a row scatter wrote to the tensor with this data id, when it came from one. */
export function scatteredRowsOf(dataId: object): { rows: Int32Array; width: number } | undefined {
  return scatteredRows.get(dataId);
}

/**
 * ScatterNd with one index per row (indices [..., 1] int32, float32 updates): the gradient of a row gather, e.g.
 * the 2^16-row word table's. Zeroed with a memset and the rows added in place (duplicates sum); the wasm kernel
 * took ~0.5 ms a tiny step for the table. Other forms take the stock kernel.
 */
function scatterKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) {
  const { indices, updates } = args.inputs as { indices: tf.TensorInfo; updates: tf.TensorInfo };
  const { shape } = (args.attrs ?? {}) as { shape: number[] };
  const lead = indices.shape.slice(0, -1);
  const width = shape.slice(1).reduce((p, q) => p * q, 1);
  const fits =
    indices.dtype === "int32" &&
    updates.dtype === "float32" &&
    shape.length >= 1 &&
    indices.shape[indices.shape.length - 1] === 1 &&
    updates.shape.join() === [...lead, ...shape.slice(1)].join();
  if (!fits) return stockKernel("ScatterNd").kernelFunc(args as never) as tf.TensorInfo;
  const b = args.backend as WasmBackendLike;
  const out = b.makeOutput([...shape], "float32");
  const to = heapFloats(b, out);
  const from = heapFloats(b, updates);
  const ids = b.typedArrayFromHeap(indices) as Int32Array;
  to.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const row = ids[i];
    if (!(row >= 0 && row < shape[0])) {
      b.disposeData(out.dataId);
      throw new RangeError(`ScatterNd: index ${row} is not in [0, ${shape[0] - 1}]`);
    }
    const at = row * width;
    const src = i * width;
    for (let j = 0; j < width; j++) to[at + j] += from[src + j];
  }
  if (width > 0) scatteredRows.set(out.dataId, { rows: Int32Array.from(new Set(ids)).sort(), width });
  return out;
}

const REPLACEMENTS: Record<(typeof FAST_KERNELS)[number], tf.KernelFunc> = {
  BatchMatMul: batchMatMulKernel as unknown as tf.KernelFunc,
  _FusedMatMul: fusedMatMulKernel as unknown as tf.KernelFunc,
  Identity: identityKernel as unknown as tf.KernelFunc,
  Cast: castKernel as unknown as tf.KernelFunc,
  Sum: sumKernel as unknown as tf.KernelFunc,
  GatherV2: gatherKernel as unknown as tf.KernelFunc,
  ScatterNd: scatterKernel as unknown as tf.KernelFunc,
};

/**
 * Fused ops of the fast path, one kernel each way: GELU, LayerNorm, RMS norm, dropout and the attention core
 * (softmax(scale q k^T + bias) v per head; native/activations.c, norms.c, dropout.c, attention.c), dense layers,
 * the contrastive loss and training BatchNorm (model/js-kernels.ts), and whole encoder blocks
 * (model/block-kernel.ts). Composed from tfjs ops they are ~2 to ~25 kernels forward and ~2 to ~35 backward, each
 * an engine call and a pass over the activations. The kernels exist for 'wasm' only while the fast path is on;
 * model/ops.ts asks `fusedOpsReady` before using them. Their gradients are registered once (the registry is
 * global) and only run where they do.
 */
const FUSED = {
  gelu: "VattGelu",
  geluGrad: "VattGeluGrad",
  layerNorm: "VattLayerNorm",
  layerNormGradX: "VattLayerNormGradX",
  layerNormGradGamma: "VattLayerNormGradGamma",
  rmsNorm: "VattRmsNorm",
  rmsNormGradX: "VattRmsNormGradX",
  rmsNormGradScale: "VattRmsNormGradScale",
  dropout: "VattDropout",
  attention: "VattAttention",
  attentionBiased: "VattAttentionBiased",
  attentionGrad: "VattAttentionGrad",
  dense: "VattDense",
  denseBiased: "VattDenseBiased",
  denseGradX: "VattDenseGradX",
  denseGradKernel: "VattDenseGradKernel",
  contrastiveLoss: "VattContrastiveLoss",
  contrastiveLossGrad: "VattContrastiveLossGrad",
  batchNorm: "VattBatchNorm",
  batchNormGrad: "VattBatchNormGrad",
  block: "VattBlockForward",
  blockGrad: "VattBlockBackward",
} as const;

type NativeModel = NonNullable<ReturnType<typeof nativeModelKernels>>;
type Inputs = Record<string, tf.TensorInfo>;

/** Native norm op codes (native/binding.c `Norm`) and what each kernel passes as p and q. */
const NORM_OPS: Record<string, { op: number; p: string; q?: string; perFeature?: boolean }> = {
  [FUSED.layerNorm]: { op: 0, p: "gamma", q: "beta" },
  [FUSED.layerNormGradX]: { op: 1, p: "gamma", q: "dy" },
  [FUSED.layerNormGradGamma]: { op: 2, p: "dy", perFeature: true },
  [FUSED.rmsNorm]: { op: 3, p: "scale" },
  [FUSED.rmsNormGradX]: { op: 4, p: "scale", q: "dy" },
  [FUSED.rmsNormGradScale]: { op: 5, p: "dy", perFeature: true },
};

function heapFloats(backend: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** The wasm kernel function of one fused op: output allocated first (allocation may move the heap), then views. */
function fusedKernel(name: string, native: NativeModel): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const i = inputs as Inputs;
    const x = i.x;
    const d = x.shape[x.shape.length - 1];
    if (name === FUSED.gelu || name === FUSED.geluGrad) {
      const out = b.makeOutput([...x.shape], "float32");
      if (name === FUSED.gelu) native.gelu(heapFloats(b, x), heapFloats(b, out));
      else native.geluGrad(heapFloats(b, x), heapFloats(b, i.dy), heapFloats(b, out));
      return out;
    }
    const spec = NORM_OPS[name];
    const out = b.makeOutput(spec.perFeature ? [d] : [...x.shape], "float32");
    const eps = (attrs as { eps: number }).eps;
    const q = spec.q ? heapFloats(b, i[spec.q]) : null;
    native.norm(spec.op, heapFloats(b, x), heapFloats(b, i[spec.p]), q, heapFloats(b, out), d, eps);
    return out;
  };
}

/** Attributes of the fused dropout and attention kernels. */
interface DropoutAttrs {
  rate: number;
  /** The four sfc32 seed words of the dropout mask (model/ops.ts `dropoutWords`). */
  words: number[];
}

interface AttentionAttrs extends DropoutAttrs {
  heads: number;
  scale: number;
}

function dropoutKernel(native: NativeModel): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const { x } = inputs as Inputs;
    const { rate, words } = attrs as unknown as DropoutAttrs;
    const out = b.makeOutput([...x.shape], "float32");
    freeingOnError(b, [out], () =>
      native.dropoutApply(heapFloats(b, x), heapFloats(b, out), rate, Uint32Array.from(words)),
    );
    return out;
  };
}

/** Runs a native call that writes `outs`; if it throws (bad arguments), `outs` are freed before the error goes on. */
function freeingOnError(b: WasmBackendLike, outs: tf.TensorInfo[], call: () => void): void {
  try {
    call();
  } catch (err) {
    for (const o of outs) b.disposeData(o.dataId);
    throw err;
  }
}

/** Forward (VattAttention, VattAttentionBiased: out) and backward (VattAttentionGrad: dq, dk, dv[, dbias]). */
function attentionKernel(native: NativeModel, backward: boolean): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const { q, k, v, bias, dy } = inputs as Partial<Inputs> & { q: tf.TensorInfo };
    const { heads, scale, rate, words } = attrs as unknown as AttentionAttrs;
    const [batch, tokens, d] = q.shape;
    // Outputs first: allocation may grow the heap and detach views made before it.
    const outs = backward
      ? [q, k!, v!].map((t) => b.makeOutput([...t.shape], "float32"))
      : [b.makeOutput([...q.shape], "float32")];
    if (backward && bias) outs.push(b.makeOutput([...bias.shape], "float32"));
    const view = (t: tf.TensorInfo | undefined) => (t ? heapFloats(b, t) : null);
    freeingOnError(b, outs, () =>
      native.attention(
        heapFloats(b, q),
        heapFloats(b, k!),
        heapFloats(b, v!),
        view(bias),
        backward ? heapFloats(b, dy!) : null,
        heapFloats(b, outs[0]),
        backward ? heapFloats(b, outs[1]) : null,
        backward ? heapFloats(b, outs[2]) : null,
        backward && bias ? heapFloats(b, outs[3]) : null,
        batch,
        tokens,
        heads,
        d / heads,
        scale,
        rate,
        Uint32Array.from(words),
        gemm?.threads ?? 1,
        null,
      ),
    );
    return backward ? outs : outs[0];
  };
}

/**
 * Dense layers over the last axis of any-rank x, rows folded into one GEMM: VattDense(Biased) x [..., din] @ kernel
 * [din, dout] (+ bias) -> [..., dout]; VattDenseGradX dy @ kernel^T -> [..., din]; VattDenseGradKernel x^T @ dy ->
 * [din, dout].
 */
function denseKernel(name: string, native: NativeModel): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const b = backend as unknown as WasmBackendLike;
    const i = inputs as Inputs;
    const g = gemm;
    if (!g) throw new Error(`${name}: the native GEMM is not loaded`);
    const lead = (t: tf.TensorInfo) => t.shape.slice(0, -1);
    const last = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];
    let out: tf.TensorInfo;
    let product: (o: Float32Array, rows: number) => void;
    if (name === FUSED.denseGradX) {
      const [din, dout] = i.kernel.shape;
      out = b.makeOutput([...lead(i.dy), din], "float32");
      product = (o, rows) =>
        g.matmul(heapFloats(b, i.dy), [rows, dout], heapFloats(b, i.kernel), [din, dout], false, true, o, [
          rows,
          din,
        ]);
    } else if (name === FUSED.denseGradKernel) {
      const [din, dout] = [last(i.x), last(i.dy)];
      out = b.makeOutput([din, dout], "float32");
      product = (o, rows) =>
        g.matmul(heapFloats(b, i.x), [rows, din], heapFloats(b, i.dy), [rows, dout], true, false, o, [
          din,
          dout,
        ]);
    } else {
      const [din, dout] = i.kernel.shape;
      out = b.makeOutput([...lead(i.x), dout], "float32");
      product = (o, rows) =>
        g.matmul(heapFloats(b, i.x), [rows, din], heapFloats(b, i.kernel), [din, dout], false, false, o, [
          rows,
          dout,
        ]);
    }
    const o = heapFloats(b, out);
    const rows = name === FUSED.denseGradKernel ? sizeOf(lead(i.x)) : sizeOf(lead(i.dy ?? i.x));
    // An empty inner dimension (no rows for the kernel's gradient, no features for the others) gives zeros.
    const inner = name === FUSED.denseGradKernel ? rows : name === FUSED.denseGradX ? last(i.dy) : last(i.x);
    if (o.length > 0) {
      freeingOnError(b, [out], () => {
        if (inner === 0) o.fill(0);
        else product(o, rows);
        if (name === FUSED.denseBiased) native.addRows(o, heapFloats(b, i.bias));
      });
    }
    return out;
  };
}

/**
 * The contrastive loss (video [B, D], text [B * K, D], mask [B, K] -> scalar) and its gradient (-> dVideo, dText),
 * as loops over the heap (model/js-kernels.ts) with the similarity products on the native GEMM.
 */
function contrastiveKernel(backward: boolean): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const { video, text, mask, dy } = inputs as Inputs;
    const { temperature } = attrs as unknown as { temperature: number };
    const g = gemm;
    if (!g) throw new Error("VattContrastiveLoss: the native GEMM is not loaded");
    const [batch, dim] = video.shape;
    const shape = { batch, captions: batch > 0 ? text.shape[0] / batch : 1, dim };
    const matmul: MatMul = (...args) => g.matmul(...args);
    if (!backward) {
      const out = b.makeOutput([], "float32");
      freeingOnError(b, [out], () => {
        const args = [heapFloats(b, video), heapFloats(b, text), heapFloats(b, mask)] as const;
        heapFloats(b, out)[0] = contrastiveLoss(...args, shape, temperature, matmul);
      });
      return out;
    }
    const outs = [b.makeOutput([...video.shape], "float32"), b.makeOutput([...text.shape], "float32")];
    freeingOnError(b, outs, () => {
      const [dVideo, dText] = outs.map((o) => heapFloats(b, o));
      const args = [heapFloats(b, video), heapFloats(b, text), heapFloats(b, mask)] as const;
      contrastiveLossGrad(...args, shape, temperature, heapFloats(b, dy)[0], matmul, dVideo, dText);
    });
    return outs;
  };
}

/**
 * Training-mode BatchNorm of x [B, C] -> [y, batch mean, batch variance], and its gradient from the three outputs'
 * (x, gamma, dy, dMean, dVariance -> dx, dGamma, dBeta), as loops over the heap (model/js-kernels.ts).
 */
function batchNormKernel(backward: boolean): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const i = inputs as Inputs;
    const { eps } = attrs as unknown as { eps: number };
    const rows = i.x.shape[0];
    const channels = i.gamma.shape[0];
    if (!backward) {
      const outs = [
        b.makeOutput([...i.x.shape], "float32"),
        b.makeOutput([channels], "float32"),
        b.makeOutput([channels], "float32"),
      ];
      const [y, mean, variance] = outs.map((o) => heapFloats(b, o));
      batchNormTraining(
        heapFloats(b, i.x),
        heapFloats(b, i.gamma),
        heapFloats(b, i.beta),
        rows,
        eps,
        y,
        mean,
        variance,
      );
      return outs;
    }
    const outs = [
      b.makeOutput([...i.x.shape], "float32"),
      b.makeOutput([channels], "float32"),
      b.makeOutput([channels], "float32"),
    ];
    const [dx, dGamma, dBeta] = outs.map((o) => heapFloats(b, o));
    const x = heapFloats(b, i.x);
    batchNormTrainingGrad(x, heapFloats(b, i.gamma), heapFloats(b, i.dy), rows, eps, dx, dGamma, dBeta);
    // The statistics' own gradients (zero in training, where they only feed the moving averages).
    const dMean = heapFloats(b, i.dMean);
    const dVariance = heapFloats(b, i.dVariance);
    for (let f = 0; f < channels; f++) {
      if (dMean[f] === 0 && dVariance[f] === 0) continue;
      let mu = 0;
      for (let r = 0; r < rows; r++) mu += x[r * channels + f];
      mu /= rows;
      for (let r = 0; r < rows; r++) {
        const at = r * channels + f;
        dx[at] += dMean[f] / rows + (dVariance[f] * 2 * (x[at] - mu)) / rows;
      }
    }
    return outs;
  };
}

/** The whole encoder block (model/block-kernel.ts), forward or backward. */
function blockKernel(native: NativeModel, backward: boolean): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    if (!gemm) throw new Error("VattBlock: the native GEMM is not loaded");
    const run = backward ? blockBackward : blockForward;
    return run(
      backend as unknown as WasmBackendLike,
      inputs as Inputs,
      attrs as unknown as BlockAttrs,
      gemm,
      native,
    );
  };
}

function fusedKernelFunc(name: string, native: NativeModel): tf.KernelFunc {
  if (name === FUSED.block || name === FUSED.blockGrad) return blockKernel(native, name === FUSED.blockGrad);
  if (name.startsWith("VattDense")) return denseKernel(name, native);
  if (name === FUSED.contrastiveLoss || name === FUSED.contrastiveLossGrad) {
    return contrastiveKernel(name === FUSED.contrastiveLossGrad);
  }
  if (name === FUSED.batchNorm || name === FUSED.batchNormGrad)
    return batchNormKernel(name === FUSED.batchNormGrad);
  if (name === FUSED.dropout) return dropoutKernel(native);
  if (name === FUSED.attention || name === FUSED.attentionBiased) return attentionKernel(native, false);
  if (name === FUSED.attentionGrad) return attentionKernel(native, true);
  return fusedKernel(name, native);
}

let fusedGradientsRegistered = false;

function registerFusedGradients(): void {
  if (fusedGradientsRegistered) return;
  const run = (name: string, inputs: Inputs, attrs?: tf.NamedAttrMap) =>
    tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs) as tf.Tensor;
  const featureSum = (dy: tf.Tensor) => tf.sum(tf.reshape(dy, [-1, dy.shape[dy.shape.length - 1]]), 0);
  tf.registerGradient({
    kernelName: FUSED.gelu,
    inputsToSave: ["x"],
    gradFunc: (dy, [x]) => ({ x: () => run(FUSED.geluGrad, { x, dy: dy as tf.Tensor }) }),
  });
  tf.registerGradient({
    kernelName: FUSED.layerNorm,
    inputsToSave: ["x", "gamma", "beta"],
    gradFunc: (dy, [x, gamma, beta], attrs) => ({
      x: () => run(FUSED.layerNormGradX, { x, gamma, dy: dy as tf.Tensor }, attrs),
      gamma: () => tf.reshape(run(FUSED.layerNormGradGamma, { x, dy: dy as tf.Tensor }, attrs), gamma.shape),
      beta: () => tf.reshape(featureSum(dy as tf.Tensor), beta.shape),
    }),
  });
  tf.registerGradient({
    kernelName: FUSED.rmsNorm,
    inputsToSave: ["x", "scale"],
    gradFunc: (dy, [x, scale], attrs) => ({
      x: () => run(FUSED.rmsNormGradX, { x, scale, dy: dy as tf.Tensor }, attrs),
      scale: () => tf.reshape(run(FUSED.rmsNormGradScale, { x, dy: dy as tf.Tensor }, attrs), scale.shape),
    }),
  });
  // The mask is drawn again from the same words: nothing is kept for the backward pass.
  tf.registerGradient({
    kernelName: FUSED.dropout,
    gradFunc: (dy, _saved, attrs) => ({ x: () => run(FUSED.dropout, { x: dy as tf.Tensor }, attrs) }),
  });
  // One backward kernel gives every input's gradient, so it runs once, here, and each input takes its part.
  const attentionGradient = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [q, k, v, bias] = saved;
    const inputs: Inputs = bias ? { q, k, v, bias, dy: dy as tf.Tensor } : { q, k, v, dy: dy as tf.Tensor };
    const [dq, dk, dv, dbias] = tf
      .engine()
      .runKernel(FUSED.attentionGrad, inputs as tf.NamedTensorMap, attrs) as tf.Tensor[];
    return { q: () => dq, k: () => dk, v: () => dv, ...(bias ? { bias: () => dbias } : {}) };
  };
  // Each input's gradient is its own kernel: only those on the path to the variables run (patch projections
  // need no gradient of their pixels, which would be the step's largest product).
  const denseGradient = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [x, kernel] = saved;
    const g = dy as tf.Tensor;
    return {
      x: () => run(FUSED.denseGradX, { dy: g, kernel }),
      kernel: () => run(FUSED.denseGradKernel, { x, dy: g }),
      bias: () => (g.rank > 1 ? tf.sum(g, [...Array(g.rank - 1).keys()]) : tf.reshape(g, g.shape)),
    };
  };
  tf.registerGradient({ kernelName: FUSED.dense, inputsToSave: ["x", "kernel"], gradFunc: denseGradient });
  tf.registerGradient({
    kernelName: FUSED.denseBiased,
    inputsToSave: ["x", "kernel"],
    gradFunc: denseGradient,
  });
  tf.registerGradient({
    kernelName: FUSED.contrastiveLoss,
    inputsToSave: ["video", "text", "mask"],
    gradFunc: (dy, [video, text, mask], attrs) => {
      const [dVideo, dText] = tf
        .engine()
        .runKernel(
          FUSED.contrastiveLossGrad,
          { video, text, mask, dy: dy as tf.Tensor },
          attrs,
        ) as tf.Tensor[];
      return { video: () => dVideo, text: () => dText, mask: () => tf.zerosLike(mask) };
    },
  });
  tf.registerGradient({
    kernelName: FUSED.batchNorm,
    inputsToSave: ["x", "gamma"],
    gradFunc: (dys, [x, gamma], attrs) => {
      const [dy, dMean, dVariance] = dys as tf.Tensor[];
      const [dx, dGamma, dBeta] = tf
        .engine()
        .runKernel(FUSED.batchNormGrad, { x, gamma, dy, dMean, dVariance }, attrs) as tf.Tensor[];
      return { x: () => dx, gamma: () => dGamma, beta: () => dBeta };
    },
  });
  tf.registerGradient({
    kernelName: FUSED.attention,
    inputsToSave: ["q", "k", "v"],
    gradFunc: attentionGradient,
  });
  tf.registerGradient({
    kernelName: FUSED.attentionBiased,
    inputsToSave: ["q", "k", "v", "bias"],
    gradFunc: attentionGradient,
  });
  fusedGradientsRegistered = true;
}

function registerFusedOps(): void {
  const native = nativeModelKernels();
  if (!native) return;
  for (const name of Object.values(FUSED)) {
    if (!tf.getKernel(name, "wasm")) {
      tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: fusedKernelFunc(name, native) });
    }
  }
  registerFusedGradients();
}

function unregisterFusedOps(): void {
  for (const name of Object.values(FUSED)) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
}

/** Whether the fused GELU and norms can run here (fast path on, wasm active). */
export function fusedOpsReady(): boolean {
  return tf.getBackend() === "wasm" && tf.getKernel(FUSED.gelu, "wasm") !== undefined;
}

/** GELU as one kernel (only when `fusedOpsReady()`). */
export function fusedGelu(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(FUSED.gelu, { x }) as tf.Tensor;
}

/** LayerNorm over the last axis as one kernel (only when `fusedOpsReady()`). */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  return tf.engine().runKernel(FUSED.layerNorm, { x, gamma, beta }, { eps }) as tf.Tensor;
}

/** RMS norm over the last axis as one kernel (only when `fusedOpsReady()`). */
export function fusedRmsNorm(x: tf.Tensor, scale: tf.Tensor, eps: number): tf.Tensor {
  return tf.engine().runKernel(FUSED.rmsNorm, { x, scale }, { eps }) as tf.Tensor;
}

/**
 * x @ kernel (+ bias) over the last axis of any-rank float32 x ([..., din] with kernel [din, dout], bias [dout])
 * as one kernel forward and one per input's gradient, rows folded into one native GEMM (only when
 * `fusedOpsReady()`).
 */
export function fusedDense(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return (
    bias
      ? tf.engine().runKernel(FUSED.denseBiased, { x, kernel, bias })
      : tf.engine().runKernel(FUSED.dense, { x, kernel })
  ) as tf.Tensor;
}

/**
 * The contrastive loss of model/losses.ts `milNceLoss` as one kernel each way: video [B, D], text [B * K, D], mask
 * [B, K] (float32) -> scalar (only when `fusedOpsReady()`).
 */
export function fusedContrastiveLoss(
  video: tf.Tensor,
  text: tf.Tensor,
  mask: tf.Tensor,
  temperature: number,
): tf.Scalar {
  return tf.engine().runKernel(FUSED.contrastiveLoss, { video, text, mask }, { temperature }) as tf.Scalar;
}

/**
 * Training-mode BatchNorm of x [B, C] as one kernel each way: [y, batch mean, biased batch variance] (only when
 * `fusedOpsReady()`).
 */
export function fusedBatchNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D] {
  return tf.engine().runKernel(FUSED.batchNorm, { x, gamma, beta }, { eps }) as unknown as [
    tf.Tensor2D,
    tf.Tensor1D,
    tf.Tensor1D,
  ];
}

/** Options of `fusedEncoderBlock`: the block's kind, attention and dropout. */
export interface EncoderBlockOptions {
  norm: BlockKind["norm"];
  biases: boolean;
  heads: number;
  scale: number;
  eps: number;
  /** Dropout rate (0 when not training) and the four masks' words (attention, output, MLP activation, MLP). */
  rate: number;
  words: number[];
  /** Additive attention bias [B, heads, N, N]. */
  bias?: tf.Tensor;
}

/**
 * A whole pre-norm encoder block (model/block-kernel.ts) as one kernel each way: x [B, N, d] -> [B, N, d].
 * `weights` holds the inputs `blockInputNames` lists besides x and bias. Only when `fusedOpsReady()`.
 */
export function fusedEncoderBlock(
  x: tf.Tensor,
  weights: Record<string, tf.Tensor>,
  o: EncoderBlockOptions,
): tf.Tensor {
  const kind: BlockKind = { norm: o.norm, biases: o.biases, masked: o.bias !== undefined };
  const names = blockInputNames(kind);
  const { heads, scale, eps, rate, words } = o;
  const attrs: BlockAttrs = { ...kind, heads, scale, eps, rate, words, threads: gemm?.threads ?? 1 };
  const all: Record<string, tf.Tensor | undefined> = { ...weights, x, bias: o.bias };
  const tensors = names.map((n) => {
    const t = all[n];
    if (!t) throw new Error(`fused encoder block: input ${n} missing`);
    return t;
  });
  // A custom gradient rather than a registered one: the intermediates are saved without being outputs of the
  // taped op, whose unused outputs would each get a zero-filled gradient tensor. Variables are read from here
  // when the gradient runs; other inputs (made in the forward pass, disposed after it) are saved.
  const variable = tensors.map((t) => t instanceof tf.Variable);
  const block = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const ins = args as tf.Tensor[];
    const named = Object.fromEntries(names.map((n, i) => [n, ins[i]]));
    const [y, work] = tf.engine().runKernel(FUSED.block, named, attrs as never) as tf.Tensor[];
    save([...ins.filter((_, i) => !variable[i]), work]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const inputs: Record<string, tf.Tensor> = { dy, work: saved[saved.length - 1] };
        let next = 0;
        names.forEach((n, i) => {
          inputs[n] = variable[i] ? tensors[i] : saved[next++];
        });
        return tf.engine().runKernel(FUSED.blockGrad, inputs, attrs as never) as tf.Tensor[];
      },
    };
  });
  return block(...tensors);
}

/**
 * A float32 tensor of `shape` whose values `write` puts straight into the wasm heap (no array of its own, no
 * copy), or undefined off the fast path.
 */
export function tensorWrittenInPlace(
  shape: number[],
  write: (out: Float32Array) => void,
): tf.Tensor | undefined {
  if (!fusedOpsReady()) return undefined;
  const backend = tf.backend() as unknown as WasmBackendLike;
  const info = backend.makeOutput(shape, "float32");
  freeingOnError(backend, [info], () => write(heapFloats(backend, info)));
  return (tf.engine() as unknown as EngineInternals).makeTensorFromTensorInfo(info, backend);
}

/** Inverted dropout with the mask of `words` (pipeline/native.ts dropoutMask) as one kernel each way. */
export function fusedDropout(x: tf.Tensor, rate: number, words: number[]): tf.Tensor {
  return tf.engine().runKernel(FUSED.dropout, { x }, { rate, words }) as tf.Tensor;
}

/**
 * softmax(scale q k^T + bias) v with dropout (rate, mask words) on the probabilities, per head, as one kernel each
 * way: q, k, v [B, N, heads * dh] -> [B, N, heads * dh]; bias [B, heads, N, N] or undefined. Only when
 * `fusedOpsReady()`.
 */
export function fusedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  scale: number,
  bias: tf.Tensor | undefined,
  rate: number,
  words: number[],
): tf.Tensor {
  const attrs = { heads, scale, rate, words };
  return (
    bias
      ? tf.engine().runKernel(FUSED.attentionBiased, { q, k, v, bias }, attrs)
      : tf.engine().runKernel(FUSED.attention, { q, k, v }, attrs)
  ) as tf.Tensor;
}

/** The parts of tfjs-core's Engine (4.x) that `shareSavedTensors` relies on. */
interface EngineInternals {
  saveTensorsForBackwardMode(tensors: tf.Tensor[]): tf.Tensor[];
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: unknown): tf.Tensor;
  keep<T extends tf.Tensor>(t: T): T;
  state: {
    tensorInfo: WeakMap<object, { backend: { incRef?(dataId: object): void } }>;
    gradientDepth: number;
  };
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
  if (info.enabled && gemm && gemm.threads === threads) return fastKernelsInfo();
  disableFastKernels();
  for (const name of FAST_KERNELS) {
    if (!tf.getKernel(name, "wasm")) {
      info = { ...OFF, fusedOptimizer: true, reason: `wasm kernel ${name} missing` };
      return fastKernelsInfo();
    }
  }
  let g = loadedGemms.get(threads);
  if (!g) {
    const loaded = loadOnnxGemm(threads);
    if (!loaded.gemm) {
      info = { ...OFF, fusedOptimizer: true, reason: loaded.reason };
      return fastKernelsInfo();
    }
    g = loaded.gemm;
    loadedGemms.set(threads, g);
  }
  gemm = g;
  stock = new Map();
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
    version: gemm.version,
    caller: gemm.caller,
  };
  return fastKernelsInfo();
}

/** Puts the stock wasm kernels back (a no-op when the fast ones are not installed). */
export function disableFastKernels(): void {
  restoreSavedTensors();
  unregisterFusedOps();
  if (stock) {
    for (const [name, config] of stock) {
      if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
      tf.registerKernel(config);
    }
    stock = undefined;
  }
  gemm = undefined;
  info = OFF;
}
