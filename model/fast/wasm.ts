/**
 * The wasm backend as the fast kernels see it: the parts of tfjs-backend-wasm's BackendWasm and of tfjs-core's
 * engine they touch (neither class is exported by its package), heap views, and what the fast path has installed
 * (the native GEMM and the stock kernels it replaced). tfjs's kernel registry is process-wide, so what is installed
 * on it is too: this record is its one mirror, written only by `enableFastKernels` / `disableFastKernels`.
 */
import type * as tf from "@tensorflow/tfjs";
import type { OnnxGemm } from "./onnx-gemm.js";

export interface HeapTensorData {
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

/** The parts of tfjs-core's Engine (4.x) that `shareSavedTensors` relies on. */
export interface EngineInternals {
  saveTensorsForBackwardMode(tensors: tf.Tensor[]): tf.Tensor[];
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: unknown): tf.Tensor;
  keep<T extends tf.Tensor>(t: T): T;
  state: {
    tensorInfo: WeakMap<object, { backend: { incRef?(dataId: object): void } }>;
    gradientDepth: number;
  };
}

/** What the fast path has installed on the wasm backend (empty while it is off). */
export const installed: { gemm?: OnnxGemm; stock?: Map<string, tf.KernelConfig> } = {};

/** The stock wasm kernel the fast path replaced (to run it as the fallback). */
export function stockKernel(name: string): tf.KernelConfig {
  const k = installed.stock?.get(name);
  if (!k) throw new Error(`stock wasm kernel ${name} missing`);
  return k;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function heapFloats(backend: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** Runs a native call that writes `outs`; if it throws (bad arguments), `outs` are freed before the error goes on. */
export function freeingOnError(b: WasmBackendLike, outs: tf.TensorInfo[], call: () => void): void {
  try {
    call();
  } catch (err) {
    for (const o of outs) b.disposeData(o.dataId);
    throw err;
  }
}
