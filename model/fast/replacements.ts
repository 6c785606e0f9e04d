/**
 * The stock wasm kernels the fast path replaces (`FAST_KERNELS`): products (BatchMatMul, _FusedMatMul) on the native
 * GEMM with batches folded into rows where the layout allows, and Identity, Cast, Sum, GatherV2 and ScatterNd where
 * the stock kernels copy or loop needlessly. Each falls back to the stock kernel for the cases it does not cover.
 */
import * as tf from "@tensorflow/tfjs";
import { nativeModelKernels } from "../../native/kernels.js";
import type { OnnxGemm } from "./onnx-gemm.js";
import { heapFloats, installed, sizeOf, stockKernel, type WasmBackendLike } from "./wasm.js";

/** The stock kernels replaced while the fast path is on. */
export const FAST_KERNELS = [
  "BatchMatMul",
  "_FusedMatMul",
  "Identity",
  "Cast",
  "Sum",
  "GatherV2",
  "ScatterNd",
] as const;

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

function batchMatMulKernel(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA: boolean; transposeB: boolean };
  if (!installed.gemm || a.dtype !== "float32" || b.dtype !== "float32") {
    return stockKernel("BatchMatMul").kernelFunc(args as never) as tf.TensorInfo;
  }
  return nativeProduct(args.backend as WasmBackendLike, a, b, !!transposeA, !!transposeB, installed.gemm);
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
  if (!installed.gemm || !a || !b || a.dtype !== "float32" || b.dtype !== "float32") {
    return stockKernel("_FusedMatMul").kernelFunc(args as never) as tf.TensorInfo;
  }
  const backend = args.backend as WasmBackendLike;
  let y = nativeProduct(backend, a, b, !!attrs.transposeA, !!attrs.transposeB, installed.gemm);
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
 * optimiser (model/fast/optim.ts), which then reads only those rows of a word table's gradient. Entries go with
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

export const REPLACEMENTS: Record<(typeof FAST_KERNELS)[number], tf.KernelFunc> = {
  BatchMatMul: batchMatMulKernel as unknown as tf.KernelFunc,
  _FusedMatMul: fusedMatMulKernel as unknown as tf.KernelFunc,
  Identity: identityKernel as unknown as tf.KernelFunc,
  Cast: castKernel as unknown as tf.KernelFunc,
  Sum: sumKernel as unknown as tf.KernelFunc,
  GatherV2: gatherKernel as unknown as tf.KernelFunc,
  ScatterNd: scatterKernel as unknown as tf.KernelFunc,
};
