import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  applyGradients,
  createOptimizer,
  disposeOptimizer,
  finetuningOptimizer,
  learningRate,
  pretrainingOptimizer,
} from "../../model/optim.js";
import { testBackend } from "./helpers.js";

before(async () => {
  await testBackend();
});

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("warmup is linear, then cosine from lr to the final lr", () => {
  const s = { lr: 1e-4, finalLr: 5e-5, warmupSteps: 10, totalSteps: 110 };
  close(learningRate(s, 0), 0, 1e-12);
  close(learningRate(s, 1), 1e-5, 1e-12);
  close(learningRate(s, 9), 9e-5, 1e-12);
  close(learningRate(s, 10), 1e-4, 1e-12);
  close(learningRate(s, 60), 7.5e-5, 1e-12);
  close(learningRate(s, 110), 5e-5, 1e-12);
  close(learningRate(s, 500), 5e-5, 1e-12);
  const half = finetuningOptimizer({ warmupSteps: 0, totalSteps: 100 }).schedule;
  close(learningRate(half, 50), 0.0025, 1e-12);
  close(learningRate(half, 100), 0, 1e-12);
});

test("Adam follows Keras' update with bias correction, and NaN gradients are zeroed", () => {
  const p = { w: tf.variable(tf.tensor1d([1, 2]), true) };
  const opt = createOptimizer(
    pretrainingOptimizer({ lr: 0.1, warmupSteps: 0, totalSteps: 1e9, finalLr: 0.1 }),
    p,
  );
  const g = tf.tensor1d([0.5, Number.NaN]);
  const r = applyGradients(opt, p, { w: g });
  close(r.gradNorm, 0.5);
  // Step 1: m = 0.05, v = 0.00025, lr_t = 0.1 sqrt(0.001) / 0.1; update = lr_t m / (sqrt(v) + 1e-7).
  const lrT = (0.1 * Math.sqrt(1 - 0.999)) / (1 - 0.9);
  const update = (lrT * 0.05) / (Math.sqrt(0.00025) + 1e-7);
  const w = p.w.dataSync();
  close(w[0], 1 - update, 1e-6);
  close(w[1], 2, 0);
  close(opt.slots["adam/m/w"].dataSync()[0], 0.05, 1e-7);
  close(opt.slots["adam/v/w"].dataSync()[0], 0.00025, 1e-9);
  assert.equal(opt.step, 1);
  tf.dispose([g, p.w]);
  disposeOptimizer(opt);
});

test("SGD momentum with global-norm clipping", () => {
  const p = { a: tf.variable(tf.tensor1d([0]), true), b: tf.variable(tf.tensor1d([0]), true) };
  const opt = createOptimizer(finetuningOptimizer({ lr: 1, warmupSteps: 0, totalSteps: 1e12 }, 1), p);
  const grads = { a: tf.tensor1d([3]), b: tf.tensor1d([4]) };
  const r1 = applyGradients(opt, p, grads);
  close(r1.gradNorm, 5, 1e-5);
  // Clipped to norm 1: (0.6, 0.8); u = -lr g.
  close(p.a.dataSync()[0], -0.6, 1e-5);
  close(p.b.dataSync()[0], -0.8, 1e-5);
  applyGradients(opt, p, grads);
  // u = 0.9 u - g: -0.54 - 0.6 = -1.14; a = -0.6 - 1.14.
  close(p.a.dataSync()[0], -1.74, 1e-5);
  tf.dispose([p.a, p.b, grads.a, grads.b]);
  disposeOptimizer(opt);
});
