import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { createOptimizer, disposeOptimizer, pretrainingOptimizer } from "../../model/optim.js";
import { embed, trainStep } from "../../model/step.js";
import { createModel, disposeModel } from "../../model/vatt.js";
import { syntheticBatch, testBackend, tinyTestConfig } from "./helpers.js";

before(async () => {
  await testBackend();
});

test("100 training steps leave tf.memory().numTensors and the backend's buffers unchanged", () => {
  // Small geometry keeps 100 steps fast: 4 video tokens, 8 audio tokens.
  const c = tinyTestConfig({
    videoGeometry: { frames: 4, height: 32, width: 32 },
    audioGeometry: { samples: 1024 },
  });
  const m = createModel(c, 0);
  const opt = createOptimizer(pretrainingOptimizer({ lr: 1e-4, warmupSteps: 10, totalSteps: 100 }), m.params);
  const batch = syntheticBatch(c, 3, 2);
  trainStep(m, opt, batch, { seed: 7 });
  const start = tf.memory().numTensors;
  const buffers = tf.engine().backend.numDataIds();
  for (let i = 0; i < 100; i++) {
    const r = trainStep(m, opt, batch, { seed: 7 });
    assert.equal(r.skipped, false);
    assert.ok(Number.isFinite(r.loss) && Number.isFinite(r.gradNorm));
  }
  assert.equal(tf.memory().numTensors, start);
  assert.equal(tf.engine().backend.numDataIds(), buffers);
  assert.equal(opt.step, 101);
  disposeOptimizer(opt);
  disposeModel(m);
});

test("the tiny preset's loss decreases over 30 steps on a fixed batch", () => {
  const c = tinyTestConfig({ dropout: 0, dropTokenRate: 0 });
  const m = createModel(c, 0);
  const opt = createOptimizer(
    pretrainingOptimizer({ lr: 1e-3, warmupSteps: 3, totalSteps: 30, finalLr: 1e-4 }),
    m.params,
  );
  const batch = syntheticBatch(c, 4, 2);
  const losses: number[] = [];
  for (let i = 0; i < 30; i++) losses.push(trainStep(m, opt, batch, { seed: 1 }).loss);
  const first = losses[0];
  const last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(last < 0.5 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  disposeOptimizer(opt);
  disposeModel(m);
});

test("a non-finite loss skips the update and leaves the weights alone", () => {
  const c = tinyTestConfig({
    videoGeometry: { frames: 4, height: 32, width: 32 },
    audioGeometry: { samples: 1024 },
  });
  const m = createModel(c, 0);
  const opt = createOptimizer(pretrainingOptimizer(), m.params);
  const batch = syntheticBatch(c, 2, 1);
  batch.video.fill(Number.NaN);
  const before = m.params["video/patch/kernel"].dataSync().slice();
  const r = trainStep(m, opt, batch, { seed: 1 });
  assert.equal(r.skipped, true);
  assert.equal(opt.step, 0);
  assert.deepEqual(m.params["video/patch/kernel"].dataSync(), before);
  disposeOptimizer(opt);
  disposeModel(m);
});

test("embed returns common-space embeddings of the configured widths and is deterministic", () => {
  const c = tinyTestConfig();
  const m = createModel(c, 0);
  const batch = syntheticBatch(c, 2, 3);
  const before = tf.memory().numTensors;
  const a = embed(m, batch);
  const b = embed(m, { size: 2, textIds: batch.textIds });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(a.videoVa?.length, 2 * c.vaDim);
  assert.equal(a.videoVt?.length, 2 * c.vtDim);
  assert.equal(a.audioVa?.length, 2 * c.vaDim);
  assert.equal(a.textVt?.length, 2 * 3 * c.vtDim);
  assert.deepEqual(a.textVt, b.textVt);
  disposeModel(m);
});

test("a tiny modality-agnostic (shared backbone) model trains and embeds", () => {
  const c = {
    ...tinyTestConfig({
      videoGeometry: { frames: 4, height: 32, width: 32 },
      audioGeometry: { samples: 1024 },
    }),
    shared: true,
  };
  const m = createModel(c, 0);
  const opt = createOptimizer(pretrainingOptimizer({ lr: 1e-3, warmupSteps: 1, totalSteps: 10 }), m.params);
  const batch = syntheticBatch(c, 3, 2);
  const r = trainStep(m, opt, batch, { seed: 3 });
  assert.ok(Number.isFinite(r.loss) && !r.skipped);
  assert.equal(embed(m, batch).textVt?.length, 3 * 2 * c.vtDim);
  disposeOptimizer(opt);
  disposeModel(m);
});
