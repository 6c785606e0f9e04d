/**
 * The small pure building blocks of the network: dense layers, norms, GELU, dropout, BatchNorm, and a row gather
 * with a gradient that works on every backend (tfjs-backend-wasm has no UnsortedSegmentSum, so tf.gather's own
 * gradient fails there; ScatterNd sums duplicate indices and exists everywhere).
 */
import * as tf from "@tensorflow/tfjs";
import type { Random } from "../core/random.js";
import { dropoutMask } from "../native/kernels.js";
import {
  fusedBatchNorm,
  fusedDense,
  fusedDropout,
  fusedGelu,
  fusedLayerNorm,
  fusedOpsReady,
  fusedRmsNorm,
} from "./fast/index.js";

/** What a forward pass needs besides weights and inputs. */
export interface ForwardContext {
  training: boolean;
  /** Dropout rate at the reference's places (0.1); ignored when not training. */
  dropout: number;
  /** Source of dropout seeds; required when training with dropout > 0. */
  rng?: Random;
  /** BatchNorm batch statistics computed in training mode, applied to the moving averages after the step. */
  batchStats?: BatchStats[];
}

export interface BatchStats {
  /** Name prefix of the BatchNorm (its state lives at prefix/moving_mean and prefix/moving_variance). */
  name: string;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * x @ kernel (+ bias) over the last axis of any-rank x. One kernel each way on the fast path (model/fast/index.ts
 * `fusedDense`); composed from reshapes, a matMul and an add otherwise (~5 kernels forward, ~10 backward).
 */
export function dense(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const din = shape[shape.length - 1];
  const fits =
    kernel.rank === 2 && kernel.shape[0] === din && (!bias || bias.shape.join() === `${kernel.shape[1]}`);
  if (fits && x.dtype === "float32" && kernel.dtype === "float32" && fusedOpsReady())
    return fusedDense(x, kernel, bias);
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  let y: tf.Tensor = tf.matMul(x.reshape([rows, din]) as tf.Tensor2D, kernel as tf.Tensor2D);
  if (bias) y = tf.add(y, bias);
  return y.reshape([...shape.slice(0, -1), kernel.shape[1] as number]);
}

export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const d = x.shape[x.shape.length - 1];
  if (fusedOpsReady() && d > 0 && gamma.size === d && beta.size === d) {
    return fusedLayerNorm(x, gamma, beta, eps);
  }
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/** T5's norm: scale only, no mean subtraction. */
export function rmsNorm(x: tf.Tensor, scale: tf.Tensor, eps: number): tf.Tensor {
  const d = x.shape[x.shape.length - 1];
  if (fusedOpsReady() && d > 0 && scale.size === d) return fusedRmsNorm(x, scale, eps);
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), scale);
}

/**
 * Exact GELU (Keras' default, approximate = false): 0.5 x (1 + erf(x / sqrt 2)); one fused native kernel each
 * way on the fast path (model/fast/index.ts), tfjs ops otherwise.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fusedOpsReady()) return fusedGelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * The seed words of one dropout mask, drawn from the context's generator in the order the network applies its
 * dropouts, so a step is reproducible.
 */
export function dropoutWords(ctx: ForwardContext): [number, number, number, number] {
  if (!ctx.rng) throw new Error("dropout in training needs a random generator");
  return [ctx.rng.nextUint32(), ctx.rng.nextUint32(), ctx.rng.nextUint32(), 1];
}

/**
 * Inverted dropout: x * mask, the mask 1 / (1 - rate) where a uniform draw is at least `rate`, else 0, the draws a
 * keyed hash of each element's index (`dropoutWords`; native/kernels.ts `dropoutMask`). One native kernel each way
 * on the fast path (the backward pass draws the mask again); otherwise the mask is made (natively when built) and
 * multiplied. Made here rather than with tf.dropout, whose uniform draws (tf.randomUniform) are generated one by
 * one in JavaScript: ~7 ms of a 64 ms tiny step.
 */
export function dropout(x: tf.Tensor, ctx: ForwardContext, rate = ctx.dropout): tf.Tensor {
  if (!ctx.training || rate <= 0) return x;
  if (!(rate < 1)) throw new RangeError(`dropout rate must be below 1, got ${rate}`);
  const words = dropoutWords(ctx);
  if (fusedOpsReady() && x.dtype === "float32") return fusedDropout(x, rate, words);
  const mask = dropoutMask(x.size, rate, words);
  return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape, "float32")));
}

/** table[ids] along axis 0, differentiable on every backend. */
export function gatherRows(table: tf.Tensor, ids: tf.Tensor1D): tf.Tensor {
  const shape = table.shape as number[];
  const gather = tf.customGrad((...inputs) => {
    const [t, i, save] = inputs as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    // Saved tensors outlive the forward pass's scope; a closure over `ids` would see it disposed.
    save([i]);
    return {
      value: tf.gather(t, i),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.scatterND(saved[0].expandDims(1), dy, shape),
        tf.zerosLike(saved[0]),
      ],
    };
  });
  return gather(table, ids);
}

/**
 * Prepends one learned vector to every sequence: [B, N, d] -> [B, N + 1, d]. Spread by a broadcasting add, whose
 * gradient is one sum; Tile's (tf.tile, tf.broadcastTo) is a slice and an add per sequence.
 */
export function prependToken(x: tf.Tensor, token: tf.Tensor): tf.Tensor {
  const [b, , d] = x.shape;
  const tokens = tf.add(tf.zeros([b as number, 1, d as number]), token.reshape([1, 1, d as number]));
  return tf.concat([tokens, x], 1);
}

/** The first token of every sequence: [B, N, d] -> [B, d]. */
export function firstToken(x: tf.Tensor): tf.Tensor2D {
  const [b, , d] = x.shape as number[];
  return x.slice([0, 0, 0], [b, 1, d]).reshape([b, d]);
}

/**
 * BatchNorm over the batch axis of [B, C]. Training normalises by the batch's statistics (biased variance, as
 * Keras) and records them for the moving-average update; inference uses the moving statistics.
 */
export function batchNorm(
  x: tf.Tensor2D,
  p: { gamma: tf.Tensor; beta: tf.Tensor; movingMean: tf.Tensor; movingVariance: tf.Tensor },
  name: string,
  eps: number,
  ctx: ForwardContext,
): tf.Tensor2D {
  let mean: tf.Tensor;
  let variance: tf.Tensor;
  const c = p.gamma.size;
  const fits =
    x.rank === 2 && x.dtype === "float32" && x.shape[1] === c && p.beta.size === c && x.shape[0] > 0;
  if (ctx.training && fits && fusedOpsReady()) {
    const [y, batchMean, batchVariance] = fusedBatchNorm(x, p.gamma, p.beta, eps);
    ctx.batchStats?.push({ name, mean: tf.keep(batchMean), variance: tf.keep(batchVariance) });
    return y;
  }
  if (ctx.training) {
    const m = tf.moments(x, 0);
    mean = m.mean;
    variance = m.variance;
    ctx.batchStats?.push({
      name,
      mean: tf.keep(mean) as tf.Tensor1D,
      variance: tf.keep(variance) as tf.Tensor1D,
    });
  } else {
    mean = p.movingMean;
    variance = p.movingVariance;
  }
  const normalised = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normalised, p.gamma), p.beta) as tf.Tensor2D;
}
