/**
 * Transfer models: one backbone of a (pretrained or fresh) VATT model with a linear classifier on its pooled
 * feature, and the fine-tuning step.
 *
 * The transfer model is a VattModel whose parameter map holds only the chosen modality's backbone (tokenizer and
 * encoder, under their pretraining names) and `classifier/kernel`, `classifier/bias`, so checkpoints, optimiser
 * slots and the training loop work on it unchanged. Reference fine-tuning (VATT, "Optimisation"):
 * - video: classifier dropout 0.5, softmax cross-entropy with label smoothing 0.1, no DropToken;
 * - audio: dropout 0 (reference code), single-label softmax CE, or multi-label sigmoid CE with the classifier bias
 *   initialised to -log(C - 1), mixup Beta(5, 5) of the waveforms and per-batch inverse label-frequency weights;
 * - SGD momentum 0.9 with warmup + half-cosine (model/optim.ts), the BACKBONE's gradients clipped to global norm
 *   0.75 (the classifier's are not: the reference's gradient_clip_norm_cls is 0).
 */
import * as tf from "@tensorflow/tfjs";
import { randomFor, randomForRun } from "../core/random.js";
import type { Batch } from "../core/records.js";
import { audioTokens, videoTokens } from "./config.js";
import {
  clipBackboneGradients,
  multiLabelBiasInit,
  multiLabelLoss,
  softmaxCrossEntropy,
} from "./finetune-losses.js";
import { dense, dropout, type ForwardContext } from "./ops.js";
import { applyGradients, type Optimizer } from "./optim.js";
import { initialValues, type ParamMap } from "./params.js";
import type { StepResult } from "./step.js";
import { audioPatches, dropTokenIndices, type Patches, videoPatches } from "./tokens.js";
import { audioBackbone, type VattModel, videoBackbone } from "./vatt.js";

export type Modality = "video" | "audio";

export interface ClassifierSpec {
  modality: Modality;
  classes: number;
  /** Sigmoid outputs (AudioSet) instead of softmax. */
  multiLabel: boolean;
}

export const CLASSIFIER_KERNEL = "classifier/kernel";
export const CLASSIFIER_BIAS = "classifier/bias";

export const isClassifierParam = (name: string): boolean => name.startsWith("classifier/");

/** Whether a parameter belongs to the modality's backbone (tokenizer + encoder; VATT-MA: the shared encoder). */
export function isBackboneParam(name: string, modality: Modality, shared: boolean): boolean {
  return name.startsWith(`${modality}/`) || (shared && name.startsWith("shared/"));
}

/** Width of the pooled feature of a modality's backbone. */
export function backboneWidth(m: VattModel, modality: Modality): number {
  const c = m.config;
  return c.shared || modality === "video" ? c.video.hidden : c.audio.hidden;
}

/**
 * The modality's backbone of `full` alone (tokenizer + encoder; the other parameters and the BatchNorm state are
 * disposed), with DropToken off: what fine-tuning trains and linear evaluation freezes.
 */
export function backboneOnly(full: VattModel, modality: Modality): VattModel {
  const params: ParamMap = {};
  for (const [name, v] of Object.entries(full.params)) {
    if (isBackboneParam(name, modality, full.config.shared)) params[name] = v;
    else v.dispose();
  }
  for (const v of Object.values(full.state)) v.dispose();
  return { config: { ...full.config, dropTokenRate: 0 }, params, state: {} };
}

/**
 * Adds a classifier to a backbone-only model: kernel glorot-uniform (Keras Dense), bias 0, or -log(C - 1) for a
 * multi-label head. The seed fixes the classifier's initial weights.
 */
export function addClassifier(m: VattModel, spec: ClassifierSpec, seed: number): VattModel {
  const d = backboneWidth(m, spec.modality);
  const rng = randomForRun(seed, "model/classifier");
  const kernel = tf.tensor2d(initialValues([d, spec.classes], { kind: "glorotUniform" }, rng), [
    d,
    spec.classes,
  ]);
  const bias = tf.fill([spec.classes], spec.multiLabel ? multiLabelBiasInit(spec.classes) : 0);
  const params: ParamMap = { ...m.params };
  params[CLASSIFIER_KERNEL] = tf.variable(kernel, true);
  params[CLASSIFIER_BIAS] = tf.variable(bias, true);
  kernel.dispose();
  bias.dispose();
  return { ...m, params };
}

/** Pooled backbone features [B, d] (inference: every token, no dropout) as a plain array. */
export function pooledFeatures(m: VattModel, modality: Modality, batch: Batch): Float32Array {
  const patches = transferPatches(m, modality, batch);
  const ctx: ForwardContext = { training: false, dropout: 0 };
  const pooled = tf.tidy(() =>
    modality === "video" ? videoBackbone(m, patches, ctx) : audioBackbone(m, patches, ctx),
  );
  const out = pooled.dataSync() as Float32Array;
  pooled.dispose();
  return out;
}

/** The model's input for a batch, every token kept (fine-tuning has no DropToken). */
export function transferPatches(m: VattModel, modality: Modality, batch: Batch): Patches {
  const c = m.config;
  return modality === "video"
    ? videoPatches(
        batch.video,
        batch.size,
        c.videoGeometry,
        dropTokenIndices(videoTokens(c.videoGeometry), 0),
      )
    : audioPatches(
        batch.audio,
        batch.size,
        c.audioGeometry,
        dropTokenIndices(audioTokens(c.audioGeometry), 0),
      );
}

/** Pooled feature -> classifier dropout (training only) -> logits [B, C]. */
export function classifierLogits(
  m: VattModel,
  modality: Modality,
  patches: Patches,
  ctx: ForwardContext,
  classifierDropout: number,
): tf.Tensor2D {
  const pooled = modality === "video" ? videoBackbone(m, patches, ctx) : audioBackbone(m, patches, ctx);
  const dropped = dropout(pooled, ctx, classifierDropout);
  return dense(dropped, m.params[CLASSIFIER_KERNEL], m.params[CLASSIFIER_BIAS]) as tf.Tensor2D;
}

/** Inference logits [B, C] as a plain array: every token, no dropout, nothing left on the tape. */
export function inferenceLogits(m: VattModel, modality: Modality, batch: Batch): Float32Array {
  const patches = transferPatches(m, modality, batch);
  const logits = tf.tidy(() => classifierLogits(m, modality, patches, { training: false, dropout: 0 }, 0));
  const out = logits.dataSync() as Float32Array;
  logits.dispose();
  return out;
}

export interface FinetuneStepOptions extends ClassifierSpec {
  /** Run seed: with the step it keys dropout and mixup, so a resumed run draws what an uninterrupted one would. */
  seed: number;
  classifierDropout: number;
  labelSmoothing: number;
  /** Global-norm clip of the backbone's gradients (0: none). */
  backboneClipNorm: number;
}

/**
 * One fine-tuning step; `batch.labels` is [B, C] (multi-hot, or soft after mixup, which the caller applies).
 * Returns the pretraining step's record with nce / milNce NaN and gradNorm the backbone's norm before clipping.
 */
export function finetuneStep(
  m: VattModel,
  optimizer: Optimizer,
  batch: Batch,
  o: FinetuneStepOptions,
): StepResult {
  const step = optimizer.step;
  const rng = randomFor(o.seed, 0, step, "model/finetune-step");
  if (batch.labels.length !== batch.size * o.classes)
    throw new RangeError(
      `batch has ${batch.labels.length} label values, expected ${batch.size} x ${o.classes}`,
    );
  const patches = transferPatches(m, o.modality, batch);
  const ctx: ForwardContext = { training: true, dropout: m.config.dropout, rng: rng.fork("dropout") };
  const names = Object.keys(m.params);
  const vars = names.map((n) => m.params[n]);
  const { value, grads } = tf.variableGrads(() => {
    const logits = classifierLogits(m, o.modality, patches, ctx, o.classifierDropout);
    const targets = tf.tensor2d(batch.labels, [batch.size, o.classes]);
    return o.multiLabel
      ? multiLabelLoss(logits, targets, true)
      : softmaxCrossEntropy(logits, targets, o.labelSmoothing);
  }, vars);
  const byName: Record<string, tf.Tensor> = {};
  for (let i = 0; i < names.length; i++) {
    const g = grads[vars[i].name];
    if (g) byName[names[i]] = g;
  }
  let clipped: Record<string, tf.Tensor> | undefined;
  try {
    const loss = value.dataSync()[0];
    const nan = Number.NaN;
    if (!Number.isFinite(loss))
      return { step, loss, nce: nan, milNce: nan, gradNorm: nan, lr: 0, skipped: true };
    const clip = o.backboneClipNorm > 0 ? o.backboneClipNorm : Number.POSITIVE_INFINITY;
    const split = clipBackboneGradients(byName, isClassifierParam, clip);
    clipped = split.grads;
    const { lr } = applyGradients(optimizer, m.params, clipped);
    return { step, loss, nce: nan, milNce: nan, gradNorm: split.backboneNorm, lr, skipped: false };
  } finally {
    value.dispose();
    tf.dispose(Object.values(grads));
    if (clipped) tf.dispose(Object.values(clipped));
  }
}
