/**
 * The training step the training sink calls, and inference embeddings for retrieval evaluation. Both take the
 * pipeline's plain `Batch`, return plain numbers / typed arrays, and leave no tensors behind.
 */
import * as tf from "@tensorflow/tfjs";
import type { Random } from "../core/random.js";
import { randomFor } from "../core/random.js";
import type { Batch } from "../core/records.js";
import { audioTokens, type ModelConfig, videoTokens } from "./config.js";
import { audioHead, textHead, updateMovingStatistics, videoHeads } from "./heads.js";
import { milNceLoss, nceLoss, TEMPERATURE } from "./losses.js";
import type { BatchStats, ForwardContext } from "./ops.js";
import { applyGradients, type Optimizer } from "./optim.js";
import { audioPatches, dropTokenIndices, type Patches, videoPatches } from "./tokens.js";
import {
  audioBackbone,
  type ForwardInputs,
  forward,
  textBackboneOf,
  type VattModel,
  videoBackbone,
} from "./vatt.js";

export interface StepOptions {
  /** Run seed: with `step` it keys DropToken and dropout, so a resumed run draws what an uninterrupted one would. */
  seed: number;
  /** Weight of MIL-NCE (video-text) against NCE (video-audio). */
  lambda?: number;
  temperature?: number;
}

export interface StepResult {
  step: number;
  loss: number;
  nce: number;
  milNce: number;
  gradNorm: number;
  lr: number;
  /** True when the loss was not finite: no update was applied (the step counter does not advance). */
  skipped: boolean;
}

function checkVideo(c: ModelConfig, size: number, shape: Batch["videoShape"]): void {
  const [b, t, h, w, ch] = shape;
  const g = c.videoGeometry;
  if (b !== size || t !== g.frames || h !== g.height || w !== g.width || ch !== 3) {
    throw new RangeError(
      `batch video is ${shape.join("x")}, the model expects ${size}x${g.frames}x${g.height}x${g.width}x3`,
    );
  }
}

/** Words per caption and captions per clip of a batch (K = textIds / (B * words)). */
function captionsPerClip(c: ModelConfig, batch: Batch): number {
  const k = batch.textIds.length / (batch.size * c.textConfig.maxWords);
  if (!Number.isInteger(k) || k < 1 || batch.textMask.length !== batch.size * k) {
    throw new RangeError(
      `batch text ids (${batch.textIds.length}) and mask (${batch.textMask.length}) do not fit B=${batch.size}`,
    );
  }
  return k;
}

/** Cuts a batch into model inputs; DropToken applies when a generator is given. */
export function prepareInputs(c: ModelConfig, batch: Batch, rng?: Random): ForwardInputs {
  checkVideo(c, batch.size, batch.videoShape);
  const rate = c.dropTokenRate;
  const videoKeep = dropTokenIndices(videoTokens(c.videoGeometry), rate, rng?.fork("droptoken/video"));
  const audioKeep = dropTokenIndices(audioTokens(c.audioGeometry), rate, rng?.fork("droptoken/audio"));
  const k = captionsPerClip(c, batch);
  return {
    video: videoPatches(batch.video, batch.size, c.videoGeometry, videoKeep),
    audio: audioPatches(batch.audio, batch.size, c.audioGeometry, audioKeep),
    textIds: batch.textIds,
    textSequences: batch.size * k,
  };
}

/** Total loss, NCE and MIL-NCE as tensors; total = NCE + lambda * MIL-NCE. */
export function lossOf(
  model: VattModel,
  inputs: ForwardInputs,
  batch: Batch,
  ctx: ForwardContext,
  lambda = 1,
  temperature = TEMPERATURE,
): { total: tf.Scalar; nce: tf.Scalar; milNce: tf.Scalar } {
  const e = forward(model, inputs, ctx);
  const k = inputs.textSequences / batch.size;
  const nce = nceLoss(e.videoVa, e.audioVa, tf.tensor1d(batch.audioMask), temperature);
  const milNce = milNceLoss(e.videoVt, e.textVt, tf.tensor2d(batch.textMask, [batch.size, k]), temperature);
  return { total: tf.add(nce, tf.mul(milNce, lambda)) as tf.Scalar, nce, milNce };
}

/**
 * One optimisation step on a batch: forward (training mode, DropToken at the config's rate), loss, gradients,
 * optimiser update and BatchNorm moving statistics. A non-finite loss skips the update.
 */
export function trainStep(
  model: VattModel,
  optimizer: Optimizer,
  batch: Batch,
  opts: StepOptions,
): StepResult {
  const step = optimizer.step;
  const rng = randomFor(opts.seed, 0, step, "model/train-step");
  const inputs = prepareInputs(model.config, batch, rng);
  const batchStats: BatchStats[] = [];
  const ctx: ForwardContext = {
    training: true,
    dropout: model.config.dropout,
    rng: rng.fork("dropout"),
    batchStats,
  };
  const names = Object.keys(model.params);
  const vars = names.map((n) => model.params[n]);
  let parts: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const l = lossOf(model, inputs, batch, ctx, opts.lambda ?? 1, opts.temperature ?? TEMPERATURE);
    parts = tf.keep(tf.stack([l.nce, l.milNce]));
    return l.total;
  }, vars);
  try {
    const loss = value.dataSync()[0];
    const [nce, milNce] = parts ? Array.from(parts.dataSync()) : [Number.NaN, Number.NaN];
    if (!Number.isFinite(loss)) {
      return { step, loss, nce, milNce, gradNorm: Number.NaN, lr: 0, skipped: true };
    }
    // variableGrads keys gradients by the tfjs variable name; map them back to our stable names.
    const byName: Record<string, tf.Tensor> = {};
    for (let i = 0; i < names.length; i++) {
      const g = grads[vars[i].name];
      if (g) byName[names[i]] = g;
    }
    const { gradNorm, lr } = applyGradients(optimizer, model.params, byName);
    updateMovingStatistics(model.state, batchStats, model.config.batchNormMomentum);
    return { step, loss, nce, milNce, gradNorm, lr, skipped: false };
  } finally {
    value.dispose();
    parts?.dispose();
    tf.dispose(Object.values(grads));
    for (const s of batchStats) tf.dispose([s.mean, s.variance]);
  }
}

/** Inference embeddings as plain arrays, row-major. */
export interface EmbedResult {
  /** [B, va], [B, vt] and the pooled backbone feature [B, dv] */
  videoVa?: Float32Array;
  videoVt?: Float32Array;
  videoPooled?: Float32Array;
  audioVa?: Float32Array;
  audioPooled?: Float32Array;
  /** [B * K, vt]: each clip's K captions contiguous */
  textVt?: Float32Array;
  textPooled?: Float32Array;
}

/** What `embed` reads: any of video, audio, text of a Batch (each optional). */
export interface EmbedInput {
  size: number;
  video?: Float32Array;
  videoShape?: Batch["videoShape"];
  audio?: Float32Array;
  /** B x K x maxWords */
  textIds?: Int32Array;
}

/** Common-space embeddings (inference: every token, BatchNorm moving statistics, no dropout). */
export function embed(model: VattModel, input: EmbedInput): EmbedResult {
  const c = model.config;
  const ctx: ForwardContext = { training: false, dropout: 0 };
  const out: EmbedResult = {};
  const read = (f: () => tf.Tensor[]): Float32Array[] => {
    const ts = tf.tidy(f);
    const arrays = ts.map((t) => t.dataSync() as Float32Array);
    tf.dispose(ts);
    return arrays;
  };
  if (input.video) {
    const shape = input.videoShape ?? [
      input.size,
      c.videoGeometry.frames,
      c.videoGeometry.height,
      c.videoGeometry.width,
      3,
    ];
    checkVideo(c, input.size, shape);
    const patches: Patches = videoPatches(
      input.video,
      input.size,
      c.videoGeometry,
      dropTokenIndices(videoTokens(c.videoGeometry), 0),
    );
    [out.videoVa, out.videoVt, out.videoPooled] = read(() => {
      const pooled = videoBackbone(model, patches, ctx);
      const h = videoHeads(model.params, model.state, c, pooled, ctx);
      return [h.va, h.vt, pooled];
    });
  }
  if (input.audio) {
    const patches = audioPatches(
      input.audio,
      input.size,
      c.audioGeometry,
      dropTokenIndices(audioTokens(c.audioGeometry), 0),
    );
    [out.audioVa, out.audioPooled] = read(() => {
      const pooled = audioBackbone(model, patches, ctx);
      return [audioHead(model.params, pooled), pooled];
    });
  }
  if (input.textIds) {
    const ids = input.textIds;
    const sequences = ids.length / c.textConfig.maxWords;
    [out.textVt, out.textPooled] = read(() => {
      const pooled = textBackboneOf(model, ids, sequences, ctx);
      return [textHead(model.params, pooled), pooled];
    });
  }
  return out;
}
