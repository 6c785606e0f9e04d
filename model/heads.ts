/**
 * Projection heads from pooled features to the common spaces (reference):
 *   video -> S_va: Dense(va, no bias) -> BN -> ReLU -> Dense(va, no bias) -> BN
 *   video S_va -> S_vt: ReLU -> Dense(vt, no bias) -> BN
 *   audio -> S_va: Dense(va);  text -> S_vt: Dense(vt)
 * BatchNorm: momentum 0.9, eps 1e-5; moving statistics are model state. Heads do not normalise: the loss and
 * retrieval L2-normalise.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "./config.js";
import { fusedMovingAverages } from "./fast/optim.js";
import { batchNorm, dense, type ForwardContext } from "./ops.js";
import { ONES, type ParamBuilder, type ParamMap, ZEROS } from "./params.js";
import { buildDense } from "./transformer.js";

function buildBatchNorm(b: ParamBuilder, prefix: string, c: number): void {
  b.add(`${prefix}/gamma`, [c], ONES);
  b.add(`${prefix}/beta`, [c], ZEROS);
  b.addState(`${prefix}/moving_mean`, [c], ZEROS);
  b.addState(`${prefix}/moving_variance`, [c], ONES);
}

/** Widths of the pooled features that enter the heads. */
export function pooledWidths(c: ModelConfig): { video: number; audio: number; text: number } {
  const dv = c.video.hidden;
  return c.shared
    ? { video: dv, audio: dv, text: dv }
    : { video: dv, audio: c.audio.hidden, text: c.text.hidden };
}

export function buildHeads(b: ParamBuilder, c: ModelConfig): void {
  const w = pooledWidths(c);
  buildDense(b, "heads/video_va/fc1", w.video, c.vaDim, false);
  buildBatchNorm(b, "heads/video_va/bn1", c.vaDim);
  buildDense(b, "heads/video_va/fc2", c.vaDim, c.vaDim, false);
  buildBatchNorm(b, "heads/video_va/bn2", c.vaDim);
  buildDense(b, "heads/video_vt/fc", c.vaDim, c.vtDim, false);
  buildBatchNorm(b, "heads/video_vt/bn", c.vtDim);
  buildDense(b, "heads/audio_va/fc", w.audio, c.vaDim, true);
  buildDense(b, "heads/text_vt/fc", w.text, c.vtDim, true);
}

function bn(
  p: ParamMap,
  s: ParamMap,
  name: string,
  x: tf.Tensor,
  c: ModelConfig,
  ctx: ForwardContext,
): tf.Tensor2D {
  return batchNorm(
    x as tf.Tensor2D,
    {
      gamma: p[`${name}/gamma`],
      beta: p[`${name}/beta`],
      movingMean: s[`${name}/moving_mean`],
      movingVariance: s[`${name}/moving_variance`],
    },
    name,
    c.batchNormEps,
    ctx,
  );
}

/** Pooled video [B, dv] -> { va: [B, va], vt: [B, vt] }. */
export function videoHeads(
  p: ParamMap,
  s: ParamMap,
  c: ModelConfig,
  pooled: tf.Tensor,
  ctx: ForwardContext,
): { va: tf.Tensor2D; vt: tf.Tensor2D } {
  let h: tf.Tensor = bn(p, s, "heads/video_va/bn1", dense(pooled, p["heads/video_va/fc1/kernel"]), c, ctx);
  h = tf.relu(h);
  const va = bn(p, s, "heads/video_va/bn2", dense(h, p["heads/video_va/fc2/kernel"]), c, ctx);
  const vt = bn(p, s, "heads/video_vt/bn", dense(tf.relu(va), p["heads/video_vt/fc/kernel"]), c, ctx);
  return { va, vt };
}

export function audioHead(p: ParamMap, pooled: tf.Tensor): tf.Tensor2D {
  return dense(pooled, p["heads/audio_va/fc/kernel"], p["heads/audio_va/fc/bias"]) as tf.Tensor2D;
}

export function textHead(p: ParamMap, pooled: tf.Tensor): tf.Tensor2D {
  return dense(pooled, p["heads/text_vt/fc/kernel"], p["heads/text_vt/fc/bias"]) as tf.Tensor2D;
}

/** moving = momentum * moving + (1 - momentum) * batch, for every BatchNorm that ran in training mode. */
export function updateMovingStatistics(
  state: ParamMap,
  stats: { name: string; mean: tf.Tensor; variance: tf.Tensor }[],
  momentum: number,
): void {
  if (fusedMovingAverages(state, stats, momentum)) return;
  tf.tidy(() => {
    for (const { name, mean, variance } of stats) {
      const m = state[`${name}/moving_mean`];
      const v = state[`${name}/moving_variance`];
      m.assign(tf.add(tf.mul(m, momentum), tf.mul(mean, 1 - momentum)));
      v.assign(tf.add(tf.mul(v, momentum), tf.mul(variance, 1 - momentum)));
    }
  });
}
