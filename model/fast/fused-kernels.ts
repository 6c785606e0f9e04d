/**
 * Fused ops of the fast path, one kernel each way: GELU, LayerNorm, RMS norm, dropout and the attention core
 * (softmax(scale q k^T + bias) v per head; native/activations.c, norms.c, dropout.c, attention.c), dense layers,
 * the contrastive loss and training BatchNorm (model/fast/js-kernels.ts), and whole encoder blocks
 * (model/fast/block-kernel.ts). Composed from tfjs ops they are ~2 to ~25 kernels forward and ~2 to ~35 backward, each
 * an engine call and a pass over the activations. The kernels exist for 'wasm' only while the fast path is on;
 * model/ops.ts asks `fusedOpsReady` before using them. Their gradients are registered once (the registry is
 * global) and only run where they do.
 */
import * as tf from "@tensorflow/tfjs";
import { nativeModelKernels } from "../../native/kernels.js";
import { type BlockAttrs, blockBackward, blockForward } from "./block-kernel.js";
import {
  batchNormTraining,
  batchNormTrainingGrad,
  contrastiveLoss,
  contrastiveLossGrad,
  type MatMul,
} from "./js-kernels.js";
import { freeingOnError, heapFloats, installed, sizeOf, type WasmBackendLike } from "./wasm.js";

export const FUSED = {
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

export type NativeModel = NonNullable<ReturnType<typeof nativeModelKernels>>;
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
export interface DropoutAttrs {
  rate: number;
  /** The four sfc32 seed words of the dropout mask (model/ops.ts `dropoutWords`). */
  words: number[];
}

export interface AttentionAttrs extends DropoutAttrs {
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
        installed.gemm?.threads ?? 1,
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
    const g = installed.gemm;
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
 * as loops over the heap (model/fast/js-kernels.ts) with the similarity products on the native GEMM.
 */
function contrastiveKernel(backward: boolean): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmBackendLike;
    const { video, text, mask, dy } = inputs as Inputs;
    const { temperature } = attrs as unknown as { temperature: number };
    const g = installed.gemm;
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
 * (x, gamma, dy, dMean, dVariance -> dx, dGamma, dBeta), as loops over the heap (model/fast/js-kernels.ts).
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

/** The whole encoder block (model/fast/block-kernel.ts), forward or backward. */
function blockKernel(native: NativeModel, backward: boolean): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    if (!installed.gemm) throw new Error("VattBlock: the native GEMM is not loaded");
    const run = backward ? blockBackward : blockForward;
    return run(
      backend as unknown as WasmBackendLike,
      inputs as Inputs,
      attrs as unknown as BlockAttrs,
      installed.gemm,
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

export function registerFusedOps(): void {
  const native = nativeModelKernels();
  if (!native) return;
  for (const name of Object.values(FUSED)) {
    if (!tf.getKernel(name, "wasm")) {
      tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: fusedKernelFunc(name, native) });
    }
  }
  registerFusedGradients();
}

export function unregisterFusedOps(): void {
  for (const name of Object.values(FUSED)) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
}
