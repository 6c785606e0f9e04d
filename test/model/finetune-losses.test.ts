import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  clipBackboneGradients,
  inverseLabelFrequencyWeights,
  multiLabelBiasInit,
  multiLabelLoss,
  oneHotTargets,
  smoothLabels,
  softmaxCrossEntropy,
} from "../../model/finetune-losses.js";
import {
  applyGradients,
  createOptimizer,
  disposeOptimizer,
  finetuningOptimizer,
  learningRate,
} from "../../model/optim.js";
import { testBackend } from "./helpers.js";

before(async () => {
  await testBackend();
});

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const scalar = (t: tf.Tensor) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

describe("single-label loss", () => {
  it("label smoothing 0.1 against a hand computation", () => {
    const logits = tf.tensor2d([
      [1, 2, 3],
      [0.5, -1, 0],
    ]);
    const targets = oneHotTargets([2, 0], 3);
    const smoothed = smoothLabels(targets);
    assert.deepEqual(
      Array.from(smoothed.dataSync()).map((x) => Number(x.toFixed(6))),
      [0.033333, 0.033333, 0.933333, 0.933333, 0.033333, 0.033333],
    );
    // By hand: -sum_c y_c (x_c - logsumexp(x)) per row, then the mean.
    const row = (x: number[], y: number[]) => {
      const lse = Math.log(x.reduce((a, v) => a + Math.exp(v), 0));
      return -y.reduce((a, yc, c) => a + yc * (x[c] - lse), 0);
    };
    const s = [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3];
    const expected = (row([1, 2, 3], s) + row([0.5, -1, 0], [s[2], s[0], s[1]])) / 2;
    close(scalar(softmaxCrossEntropy(logits, targets, 0.1)), expected);
    close(scalar(softmaxCrossEntropy(logits, smoothed as tf.Tensor2D)), expected);
    const plain = (row([1, 2, 3], [0, 0, 1]) + row([0.5, -1, 0], [1, 0, 0])) / 2;
    close(scalar(softmaxCrossEntropy(logits, targets)), plain);
    tf.dispose([logits, targets, smoothed]);
    assert.throws(() => oneHotTargets([3], 3), /label 3 of sample 0/);
  });
});

describe("multi-label loss", () => {
  // Batch of 3: class counts n = [2, 1, 2]; labels per sample k = [2, 1, 2].
  const y = [
    [1, 0, 1],
    [1, 0, 0],
    [0, 1, 1],
  ];
  const x = [
    [0.3, -1, 2],
    [-0.5, 0.2, 0],
    [1.5, -2, -0.1],
  ];

  it("weights each sample by the mean inverse batch count of its labels", () => {
    const targets = tf.tensor2d(y);
    const w = inverseLabelFrequencyWeights(targets).dataSync();
    close(w[0], (1 / 2 + 1 / 2) / 2);
    close(w[1], 1 / 2);
    close(w[2], (1 / 1 + 1 / 2) / 2);
    const none = inverseLabelFrequencyWeights(
      tf.tensor2d([
        [0, 0],
        [1, 0],
      ]),
    ).dataSync();
    assert.deepEqual(Array.from(none), [0, 1]);
    targets.dispose();
  });

  it("sums the sigmoid cross-entropy over classes, weights it, and averages over the batch", () => {
    const bce = (logit: number, target: number) => {
      const p = 1 / (1 + Math.exp(-logit));
      return -(target * Math.log(p) + (1 - target) * Math.log(1 - p));
    };
    const weights = [0.5, 0.5, 0.75];
    let expected = 0;
    let unweighted = 0;
    for (let i = 0; i < 3; i++) {
      const sum = x[i].reduce((a, v, c) => a + bce(v, y[i][c]), 0);
      expected += (weights[i] * sum) / 3;
      unweighted += sum / 3;
    }
    const logits = tf.tensor2d(x);
    const targets = tf.tensor2d(y);
    close(scalar(multiLabelLoss(logits, targets)), expected);
    close(scalar(multiLabelLoss(logits, targets, false)), unweighted);
    // Stable for large logits: no Infinity or NaN.
    const big = tf.tensor2d([[80, -80]]);
    const loss = scalar(multiLabelLoss(big, tf.tensor2d([[0, 1]])));
    close(loss, 160, 1e-3);
    tf.dispose([logits, targets, big]);
  });

  it("starts the classifier bias at -log(C - 1): probability 1 / C", () => {
    close(multiLabelBiasInit(527), -Math.log(526), 1e-12);
    close(1 / (1 + Math.exp(-multiLabelBiasInit(527))), 1 / 527, 1e-12);
    assert.throws(() => multiLabelBiasInit(1), /at least 2 classes/);
  });
});

describe("fine-tuning optimisation", () => {
  it("the SGD schedule is the reference's warmup then half-cosine to 0", () => {
    const init = 0.005;
    const warmup = 2500;
    const total = 100_000;
    const s = finetuningOptimizer().schedule;
    assert.deepEqual([s.lr, s.warmupSteps, s.totalSteps, s.finalLr], [init, warmup, total, 0]);
    const reference = (step: number) =>
      step < warmup
        ? 0 + (step / warmup) * (init - 0)
        : (init * (Math.cos((Math.PI * (step - warmup)) / (total - warmup)) + 1)) / 2;
    for (const step of [0, 1, 100, 2499, 2500, 2501, 30_000, 51_250, 99_999, 100_000])
      close(learningRate(s, step), reference(step), 1e-15);
  });

  it("momentum 0.9 without Nesterov, clipping the backbone's gradients only", () => {
    const config = finetuningOptimizer({ lr: 0.1, warmupSteps: 0, totalSteps: 1e12 }, undefined);
    assert.deepEqual(config.method, { kind: "sgd", momentum: 0.9 });
    const p = { w: tf.variable(tf.tensor1d([0]), true) };
    const opt = createOptimizer({ ...config, clipNorm: undefined }, p);
    const g = { w: tf.tensor1d([1]) };
    applyGradients(opt, p, g);
    applyGradients(opt, p, g);
    // Plain momentum: u1 = -0.1, u2 = 0.9 u1 - 0.1 = -0.19; w = -0.29 (Nesterov would give -0.1 - 0.9 * 0.1 + ...).
    close(p.w.dataSync()[0], -0.29, 1e-6);
    disposeOptimizer(opt);
    tf.dispose([p.w, g.w]);

    const grads = {
      "video/layer0/w": tf.tensor1d([3, 0]),
      "video/layer1/w": tf.tensor1d([4]),
      "classifier/w": tf.tensor1d([10, Number.NaN]),
    };
    const r = clipBackboneGradients(grads, (name) => name.startsWith("classifier/"));
    close(r.backboneNorm, 5);
    assert.deepEqual(
      Array.from(r.grads["video/layer0/w"].dataSync()).map((v) => Number(v.toFixed(6))),
      [0.45, 0],
    );
    close(r.grads["video/layer1/w"].dataSync()[0], 0.6);
    assert.deepEqual(Array.from(r.grads["classifier/w"].dataSync()), [10, 0]);
    const small = clipBackboneGradients({ a: tf.tensor1d([0.3]) }, () => false);
    close(small.grads.a.dataSync()[0], 0.3);
    tf.dispose([...Object.values(grads), ...Object.values(r.grads), ...Object.values(small.grads)]);
  });
});
