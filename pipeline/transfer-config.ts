/**
 * The fine-tuning run's configuration (`vatt finetune`), in the style of the pretraining one (pipeline/config.ts):
 * one schema, checked key by key, from YAML/JSON and --set, saved as config.json in the run directory.
 *
 * Defaults are the CPU demo's scale; the paper's values are in the help (VATT "Optimisation", reference code
 * "Downstream details"). What is fixed by the protocol and not a key: SGD (momentum below), warmup then half-cosine
 * to 0, label smoothing on single-label heads, the backbone-only gradient clip, no DropToken, Inception crop + flip
 * at train time, 4 windows x 3 crops at test time.
 */
import { type PretrainConfig, resolveSchema, type Schema, type ValueOf } from "./config.js";

export const FINETUNE_SCHEMA = {
  runDir: {
    kind: "string",
    default: "runs/finetune",
    help: "where config, metrics, checkpoints, plots, eval.json go",
  },
  seed: { kind: "number", default: 0, integer: true, min: 0, help: "the one seed of the run" },
  model: {
    backend: {
      kind: "string",
      default: "auto",
      choices: ["auto", "node-gpu", "node", "wasm", "cpu"],
      help: "TensorFlow.js backend",
    },
    resolution: {
      kind: "number",
      default: 0,
      integer: true,
      min: 0,
      help: "input crop size in pixels, 0 = the checkpoint's (paper: 320; positional tables resized by cubic interpolation)",
    },
    frames: {
      kind: "number",
      default: 0,
      integer: true,
      min: 0,
      help: "frames per clip, 0 = the checkpoint's (images: 4, the picture repeated)",
    },
  },
  data: {
    split: {
      kind: "number",
      default: 1,
      integer: true,
      min: 1,
      max: 5,
      help: "UCF101/HMDB51 split 1-3, ESC-50 test fold 1-5",
    },
    fps: {
      kind: "number",
      default: 10,
      min: 0.1,
      help: "frames per second sampled (paper: 25 with stride 2)",
    },
    stride: {
      kind: "number",
      default: 1,
      integer: true,
      min: 1,
      help: "keep every stride-th frame (paper: 2)",
    },
    decodeShortSide: {
      kind: "number",
      default: 80,
      integer: true,
      min: 8,
      help: "short side decoded before cropping",
    },
    shuffleBuffer: { kind: "number", default: 1000, integer: true, min: 0, help: "clips shuffled together" },
    concurrency: {
      kind: "number",
      default: 8,
      integer: true,
      min: 1,
      max: 64,
      help: "clips decoded at once",
    },
    buffer: {
      kind: "number",
      default: 8,
      integer: true,
      min: 1,
      help: "decoded examples held ahead of the model",
    },
    decoder: {
      kind: "string",
      default: "auto",
      choices: ["auto", "libav", "process"],
      help: "who decodes video",
    },
    decodeTimeoutMs: {
      kind: "number",
      default: 30000,
      integer: true,
      min: 100,
      help: "per-clip decode limit",
    },
  },
  augment: {
    minArea: { kind: "number", default: 0.08, min: 0.01, max: 1, help: "smallest Inception crop area share" },
    flip: { kind: "number", default: 0.5, min: 0, max: 1, help: "chance of a horizontal flip of the clip" },
  },
  train: {
    batchSize: {
      kind: "number",
      default: 8,
      integer: true,
      min: 1,
      help: "examples per step (paper: 64; audio 1024)",
    },
    steps: {
      kind: "number",
      default: 200,
      integer: true,
      min: 1,
      help: "optimiser steps (paper: 100k; audio 50k)",
    },
    learningRate: {
      kind: "number",
      default: 0.005,
      min: 0,
      help: "peak learning rate (paper: 0.005; audio 0.2)",
    },
    warmupSteps: {
      kind: "number",
      default: 20,
      integer: true,
      min: 0,
      help: "linear warmup (paper: 2.5k; audio 5k)",
    },
    momentum: { kind: "number", default: 0.9, min: 0, max: 1, help: "SGD momentum (paper: 0.9)" },
    labelSmoothing: {
      kind: "number",
      default: 0.1,
      min: 0,
      max: 1,
      help: "single-label targets (paper: 0.1)",
    },
    classifierDropout: {
      kind: "number",
      default: -1,
      min: -1,
      max: 0.95,
      help: "dropout before the classifier, -1 = the reference's (video 0.5, audio 0)",
    },
    gradClipNorm: {
      kind: "number",
      default: 0.75,
      min: 0,
      help: "backbone gradient global-norm clip, 0 = off (paper: 0.75)",
    },
    mixup: {
      kind: "boolean",
      default: true,
      help: "multi-label audio: mixup Beta(5, 5) of waveforms and labels",
    },
    checkpointEvery: {
      kind: "number",
      default: 100,
      integer: true,
      min: 1,
      help: "steps between checkpoints",
    },
    keepCheckpoints: { kind: "number", default: 2, integer: true, min: 1, help: "checkpoints kept" },
    logEvery: { kind: "number", default: 1, integer: true, min: 1, help: "steps between metrics lines" },
  },
  eval: {
    windows: {
      kind: "number",
      default: 4,
      integer: true,
      min: 1,
      help: "temporal windows per test video (paper: 4)",
    },
    crops: {
      kind: "number",
      default: 3,
      integer: true,
      min: 1,
      max: 3,
      help: "spatial crops, 1 or 3 (paper: 3)",
    },
    batchSize: { kind: "number", default: 12, integer: true, min: 1, help: "views per inference call" },
    maxVideos: {
      kind: "number",
      default: 0,
      integer: true,
      min: 0,
      help: "test videos evaluated at most, 0 = all",
    },
  },
} as const satisfies Schema;

export type FinetuneConfig = ValueOf<typeof FINETUNE_SCHEMA>;

/** The demo's scale over the defaults (a few minutes on 2 cores with the tiny preset). */
export const DEMO_FINETUNE: Record<string, unknown> = {
  "train.steps": 150,
  "train.batchSize": 8,
  "train.learningRate": 0.01,
  "train.warmupSteps": 15,
  "train.checkpointEvery": 150,
  "augment.minArea": 0.3,
};

/** Defaults, then each layer in order (a file, flags); errors name the key. */
export function resolveFinetuneConfig(...layers: unknown[]): FinetuneConfig {
  return resolveSchema(FINETUNE_SCHEMA, ...layers);
}

/** Decoding settings that travel from the pretraining run when the fine-tuning config leaves them alone. */
export function inheritedData(run: PretrainConfig | undefined): Record<string, unknown> {
  return run ? { "data.fps": run.data.fps, "data.decodeShortSide": run.data.decodeShortSide } : {};
}
