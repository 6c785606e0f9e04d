import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../../core/random.js";
import { keptTokens, type TransformerSize, videoTokens } from "../../model/config.js";
import { updateMovingStatistics } from "../../model/heads.js";
import { paramCounts } from "../../model/info.js";
import { type BatchStats, batchNorm, type ForwardContext } from "../../model/ops.js";
import { ParamBuilder } from "../../model/params.js";
import { relativePositionBucket } from "../../model/text.js";
import { dropTokenIndices, patchData, videoPatches } from "../../model/tokens.js";
import { buildEncoder, encoderBlock } from "../../model/transformer.js";
import { createModel, disposeModel, modelParamCount } from "../../model/vatt.js";
import { testBackend, tinyTestConfig } from "./helpers.js";

before(async () => {
  await testBackend();
});

test("the analytic parameter count equals the built tiny model, per backbone", () => {
  const c = tinyTestConfig();
  const m = createModel(c, 0);
  try {
    const counts = paramCounts(c);
    assert.equal(modelParamCount(m, "video/"), counts.video);
    assert.equal(modelParamCount(m, "audio/"), counts.audio);
    assert.equal(modelParamCount(m, "text/"), counts.text);
    assert.equal(modelParamCount(m, "heads/"), counts.heads);
    assert.equal(modelParamCount(m), counts.total);
    const state = Object.values(m.state).reduce((a, v) => a + v.size, 0);
    assert.equal(state, counts.state);
  } finally {
    disposeModel(m);
  }
});

test("the analytic count equals the built model for a tiny modality-agnostic (shared) variant", () => {
  const c = { ...tinyTestConfig(), shared: true, preset: "tiny-MA" };
  const m = createModel(c, 0);
  try {
    const counts = paramCounts(c);
    assert.equal(modelParamCount(m, "shared/"), counts.shared);
    assert.equal(modelParamCount(m, "text/"), counts.text);
    assert.equal(modelParamCount(m), counts.total);
  } finally {
    disposeModel(m);
  }
});

test("relative position buckets follow T5's definition (32 buckets, max distance 64, bidirectional)", () => {
  const bucket = (r: number) => relativePositionBucket(r, 32, 64);
  // memory - query <= 0 uses buckets 0..15, > 0 uses 16..31; |r| < 8 is exact.
  assert.equal(bucket(0), 0);
  assert.equal(bucket(-1), 1);
  assert.equal(bucket(-7), 7);
  assert.equal(bucket(1), 17);
  assert.equal(bucket(7), 23);
  // Log buckets: 8 + int(log(n/8) / log(8) * 8).
  assert.equal(bucket(-8), 8);
  assert.equal(bucket(-11), 9);
  assert.equal(bucket(-16), 10);
  assert.equal(bucket(-32), 13);
  assert.equal(bucket(16), 26);
  // Clipped to the last bucket of each half from max distance on.
  assert.equal(bucket(-64), 15);
  assert.equal(bucket(-1000), 15);
  assert.equal(bucket(200), 31);
});

test("DropToken keeps exactly int((1 - r) N) distinct tokens, each with its own position", () => {
  const c = tinyTestConfig({ videoGeometry: { frames: 8, height: 64, width: 96 } });
  const g = c.videoGeometry;
  const n = videoTokens(g); // 2 x 4 x 6 = 48
  for (const rate of [0, 0.25, 0.5, 0.75, 0.3]) {
    const keep = dropTokenIndices(n, rate, randomForRun(3, `drop-${rate}`));
    assert.equal(keep.length, keptTokens(n, rate));
    assert.equal(new Set(keep).size, keep.length);
  }
  assert.equal(keptTokens(48, 0.75), 12);
  assert.equal(keptTokens(1568, 0.5), 784);
  // Fill each voxel with its own token index, so the patches show which token they came from.
  const video = new Float32Array(g.frames * g.height * g.width * 3);
  for (let t = 0; t < g.frames; t++) {
    for (let y = 0; y < g.height; y++) {
      for (let x = 0; x < g.width; x++) {
        const token = (Math.floor(t / 4) * 4 + Math.floor(y / 16)) * 6 + Math.floor(x / 16);
        video.fill(token, ((t * g.height + y) * g.width + x) * 3, ((t * g.height + y) * g.width + x + 1) * 3);
      }
    }
  }
  const keep = dropTokenIndices(n, 0.5, randomForRun(9, "drop"));
  const p = videoPatches(video, 1, g, keep);
  assert.equal(p.tokens, 24);
  for (let k = 0; k < p.tokens; k++) {
    const values = patchData(p).subarray(k * p.patchSize, (k + 1) * p.patchSize);
    assert.ok(
      values.every((v) => v === keep[k]),
      `patch ${k} holds token ${keep[k]} only`,
    );
    const [tIdx, hIdx, wIdx] = p.positions;
    assert.equal((tIdx[k] * 4 + hIdx[k]) * 6 + wIdx[k], keep[k]);
  }
  // Different steps draw different subsets; inference (no generator) keeps everything in order.
  const other = dropTokenIndices(n, 0.5, randomForRun(10, "drop"));
  assert.notDeepEqual(Array.from(other), Array.from(keep));
  assert.deepEqual(Array.from(dropTokenIndices(5, 0.5)), [0, 1, 2, 3, 4]);
});

test("BatchNorm: training uses batch statistics and updates moving averages; inference uses them", () => {
  const x = tf.tensor2d([
    [1, 10],
    [3, 20],
    [5, 60],
  ]);
  const p = {
    gamma: tf.tensor1d([1, 2]),
    beta: tf.tensor1d([0, 1]),
    movingMean: tf.variable(tf.zeros([2]), false),
    movingVariance: tf.variable(tf.ones([2]), false),
  };
  const stats: BatchStats[] = [];
  const train = tf.tidy(() =>
    batchNorm(x, p, "bn", 1e-5, { training: true, dropout: 0, batchStats: stats }).arraySync(),
  );
  // Column 0: mean 3, biased variance 8/3.
  const z = (v: number) => (v - 3) / Math.sqrt(8 / 3 + 1e-5);
  assert.ok(Math.abs(train[0][0] - z(1)) < 1e-5 && Math.abs(train[2][0] - z(5)) < 1e-5);
  assert.equal(stats.length, 1);
  updateMovingStatistics(
    { "bn/moving_mean": p.movingMean, "bn/moving_variance": p.movingVariance },
    stats,
    0.9,
  );
  const mean = Array.from(p.movingMean.dataSync());
  const variance = Array.from(p.movingVariance.dataSync());
  assert.ok(Math.abs(mean[0] - 0.3) < 1e-6 && Math.abs(mean[1] - 3) < 1e-5);
  assert.ok(Math.abs(variance[0] - (0.9 + 0.1 * (8 / 3))) < 1e-5);
  const infer = tf.tidy(() => batchNorm(x, p, "bn", 1e-5, { training: false, dropout: 0 }).arraySync());
  assert.ok(Math.abs(infer[0][0] - (1 - mean[0]) / Math.sqrt(variance[0] + 1e-5)) < 1e-5);
  assert.ok(Math.abs(infer[1][1] - (2 * (20 - mean[1])) / Math.sqrt(variance[1] + 1e-5) - 1) < 1e-4);
  tf.dispose([
    x,
    p.gamma,
    p.beta,
    p.movingMean,
    p.movingVariance,
    ...stats.flatMap((s) => [s.mean, s.variance]),
  ]);
});

test("one Transformer block's gradient matches finite differences", () => {
  const size: TransformerSize = { name: "fd", layers: 1, hidden: 8, mlp: 16, heads: 2 };
  const b = new ParamBuilder(randomForRun(5, "fd"));
  buildEncoder(b, "enc", size);
  const rng = randomForRun(6, "fd-inputs");
  const xValues = Float32Array.from({ length: 2 * 3 * 8 }, () => rng.normal());
  const probe = Float32Array.from({ length: 2 * 3 * 8 }, () => rng.normal());
  const ctx: ForwardContext = { training: false, dropout: 0 };
  const objective = (x: tf.Tensor) =>
    tf.sum(tf.mul(encoderBlock(b.params, "enc/layer_0", size, x, 1e-6, ctx), tf.tensor3d(probe, [2, 3, 8])));
  const value = (xs: Float32Array) => tf.tidy(() => objective(tf.tensor3d(xs, [2, 3, 8])).dataSync()[0]);
  // Input gradient.
  const gx = tf.tidy(() =>
    Array.from(
      tf
        .grad(objective)(tf.tensor3d(xValues, [2, 3, 8]))
        .dataSync(),
    ),
  );
  const h = 1e-2;
  for (const i of [0, 5, 17, 30, 47]) {
    const plus = xValues.slice();
    const minus = xValues.slice();
    plus[i] += h;
    minus[i] -= h;
    const numeric = (value(plus) - value(minus)) / (2 * h);
    assert.ok(
      Math.abs(gx[i] - numeric) < 5e-3 + 2e-2 * Math.abs(numeric),
      `dx[${i}]: ${gx[i]} vs ${numeric}`,
    );
  }
  // Parameter gradients (query kernel and MLP bias) through variableGrads, as training uses them.
  const x = tf.tensor3d(xValues, [2, 3, 8]);
  for (const name of ["enc/layer_0/attn/q/kernel", "enc/layer_0/mlp/fc1/bias"]) {
    const v = b.params[name];
    const { value: loss, grads } = tf.variableGrads(() => objective(x) as tf.Scalar, [v]);
    const g = Array.from(grads[v.name].dataSync());
    tf.dispose([loss, ...Object.values(grads)]);
    const original = v.dataSync().slice();
    for (const i of [0, 3, 7]) {
      const at = (delta: number) => {
        const changed = original.slice();
        changed[i] += delta;
        tf.tidy(() => v.assign(tf.tensor(changed, v.shape)));
        return tf.tidy(() => objective(x).dataSync()[0]);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      tf.tidy(() => v.assign(tf.tensor(original, v.shape)));
      assert.ok(
        Math.abs(g[i] - numeric) < 5e-3 + 2e-2 * Math.abs(numeric),
        `${name}[${i}]: ${g[i]} vs ${numeric}`,
      );
    }
  }
  x.dispose();
  for (const v of Object.values(b.params)) v.dispose();
});
