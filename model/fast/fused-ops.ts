/**
 * The fused ops as functions the model calls (model/ops.ts, transformer.ts, losses.ts, tokens.ts): each one engine
 * call to a kernel of fused-kernels.ts, usable only while `fusedOpsReady()`.
 */
import * as tf from "@tensorflow/tfjs";
import { type BlockAttrs, type BlockKind, blockInputNames } from "./block-kernel.js";
import { FUSED } from "./fused-kernels.js";
import { type EngineInternals, freeingOnError, heapFloats, installed, type WasmBackendLike } from "./wasm.js";

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
 * A whole pre-norm encoder block (model/fast/block-kernel.ts) as one kernel each way: x [B, N, d] -> [B, N, d].
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
  const attrs: BlockAttrs = {
    ...kind,
    heads,
    scale,
    eps,
    rate,
    words,
    threads: installed.gemm?.threads ?? 1,
  };
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

/** Inverted dropout with the mask of `words` (native/kernels.ts dropoutMask) as one kernel each way. */
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
