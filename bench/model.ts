/**
 * Tiny-preset training step time at DropToken rates 0/25/50/75 %, the GFLOP/s that achieves, and beside it the
 * backend's own matmul GFLOP/s measured in the same run (`ratio` = model / matmul).
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../model/backend.js";
import {
  audioTokens,
  keptTokens,
  type ModelConfig,
  presetConfig,
  videoTokens,
  voxelSize,
} from "../model/config.js";
import { encoderFlops } from "../model/info.js";
import { createOptimizer, disposeOptimizer, pretrainingOptimizer } from "../model/optim.js";
import { trainStep } from "../model/train.js";
import { createModel, disposeModel } from "../model/vatt.js";
import { randomForRun } from "../pipeline/random.js";
import type { Batch } from "../pipeline/records.js";

const BATCH = 8;
const CAPTIONS = 2;
const WARMUP_STEPS = 3;
const TIMED_STEPS = 8;

/**
 * FLOPs of one training step as executed: forward over the kept tokens (this implementation projects only kept
 * patches), backward counted as twice the forward.
 */
export function trainingStepFlops(c: ModelConfig, rate: number, batch: number, captions: number): number {
  const nv = keptTokens(videoTokens(c.videoGeometry), rate);
  const na = keptTokens(audioTokens(c.audioGeometry), rate);
  const words = c.textConfig.maxWords + 1;
  const video = 2 * nv * voxelSize(c.videoGeometry) * c.video.hidden + encoderFlops(c.video, nv + 1);
  const audio = 2 * na * c.audioGeometry.patch * c.audio.hidden + encoderFlops(c.audio, na + 1);
  const text = 2 * words * c.textConfig.embedDim * c.text.hidden + encoderFlops(c.text, words);
  return 3 * (batch * (video + audio) + batch * captions * text);
}

function benchBatch(c: ModelConfig): Batch {
  const rng = randomForRun(0, "bench/model");
  const g = c.videoGeometry;
  const video = Float32Array.from({ length: BATCH * g.frames * g.height * g.width * 3 }, () =>
    rng.uniform(-1, 1),
  );
  const audio = Float32Array.from({ length: BATCH * c.audioGeometry.samples }, () => rng.uniform(-1, 1));
  const words = c.textConfig.maxWords;
  const textIds = Int32Array.from({ length: BATCH * CAPTIONS * words }, (_, i) =>
    i % words < 10 ? 1 + rng.int(c.textConfig.vocabSize - 1) : 0,
  );
  return {
    size: BATCH,
    video,
    videoShape: [BATCH, g.frames, g.height, g.width, 3],
    audio,
    audioMask: new Float32Array(BATCH).fill(1),
    textIds,
    textMask: new Float32Array(BATCH * CAPTIONS).fill(1),
    labels: new Float32Array(0),
    sources: new Array(BATCH).fill("bench"),
    ids: Array.from({ length: BATCH }, (_, i) => `bench-${i}`),
  };
}

/** GFLOP/s of a square matmul on the current backend. */
function matmulGflops(n = 512, repeats = 10): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const warm = tf.matMul(a, b);
  warm.dataSync();
  warm.dispose();
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  }
  const seconds = (performance.now() - t0) / 1e3;
  tf.dispose([a, b]);
  return (repeats * 2 * n ** 3) / seconds / 1e9;
}

export async function benchModel(opts: { json: boolean }): Promise<Record<string, unknown>> {
  const backend = await selectBackend("auto");
  const base = presetConfig("tiny");
  if (!base) throw new Error("tiny preset missing");
  const matmul = matmulGflops();
  const rates: { dropRate: number; msPerStep: number; gflopPerStep: number; gflops: number }[] = [];
  for (const rate of [0, 0.25, 0.5, 0.75]) {
    const c: ModelConfig = { ...base, dropTokenRate: rate };
    const model = createModel(c, 0);
    const opt = createOptimizer(
      pretrainingOptimizer({ lr: 1e-4, warmupSteps: 10, totalSteps: 1000 }),
      model.params,
    );
    const batch = benchBatch(c);
    for (let i = 0; i < WARMUP_STEPS; i++) trainStep(model, opt, batch, { seed: 0 });
    const t0 = performance.now();
    for (let i = 0; i < TIMED_STEPS; i++) trainStep(model, opt, batch, { seed: 0 });
    const msPerStep = (performance.now() - t0) / TIMED_STEPS;
    const flops = trainingStepFlops(c, rate, BATCH, CAPTIONS);
    rates.push({
      dropRate: rate,
      msPerStep: Number(msPerStep.toFixed(1)),
      gflopPerStep: Number((flops / 1e9).toFixed(3)),
      gflops: Number((flops / 1e9 / (msPerStep / 1e3)).toFixed(2)),
    });
    disposeOptimizer(opt);
    disposeModel(model);
  }
  const achieved = rates[0].gflops;
  const result = {
    name: "model",
    backend: backend.name,
    preset: "tiny",
    batch: BATCH,
    captions: CAPTIONS,
    video: `${base.videoGeometry.frames}x${base.videoGeometry.height}x${base.videoGeometry.width}`,
    audioSamples: base.audioGeometry.samples,
    rates,
    modelGflops: achieved,
    matmulGflops: Number(matmul.toFixed(2)),
    ratio: Number((achieved / matmul).toFixed(3)),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  if (!opts.json) {
    console.log(`backend ${result.backend}; matmul ${result.matmulGflops} GFLOP/s`);
    for (const r of rates) console.log(`  drop ${r.dropRate}: ${r.msPerStep} ms/step, ${r.gflops} GFLOP/s`);
  }
  return result;
}
