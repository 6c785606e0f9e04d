import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import type { Batch } from "../../core/records.js";
import { mixup, mixupBatch, sampleBeta, sampleGamma } from "../../operators/mixup.js";

function moments(draws: Float64Array): { mean: number; variance: number } {
  let sum = 0;
  for (const x of draws) sum += x;
  const mean = sum / draws.length;
  let squares = 0;
  for (const x of draws) squares += (x - mean) ** 2;
  return { mean, variance: squares / (draws.length - 1) };
}

describe("Beta sampling", () => {
  it("Beta(5, 5) has mean 1/2 and variance ab / ((a + b)^2 (a + b + 1)) = 1/44", () => {
    const rng = randomFor(1, 0, 0, "beta-test");
    const draws = Float64Array.from({ length: 40_000 }, () => sampleBeta(5, 5, rng));
    const { mean, variance } = moments(draws);
    // Standard errors: mean 0.00075, variance ~0.00016.
    assert.ok(Math.abs(mean - 0.5) < 0.004, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1 / 44) < 0.0008, `variance ${variance}`);
    assert.ok(draws.every((x) => x > 0 && x < 1));
    const skewed = moments(Float64Array.from({ length: 20_000 }, () => sampleBeta(2, 5, rng)));
    assert.ok(Math.abs(skewed.mean - 2 / 7) < 0.005, `Beta(2, 5) mean ${skewed.mean}`);
  });

  it("Gamma(k) has mean and variance k, below and above shape 1", () => {
    const rng = randomFor(2, 0, 0, "gamma-test");
    for (const k of [0.5, 2.5, 5]) {
      const { mean, variance } = moments(Float64Array.from({ length: 30_000 }, () => sampleGamma(k, rng)));
      assert.ok(Math.abs(mean - k) < 5 * Math.sqrt(k / 30_000), `Gamma(${k}) mean ${mean}`);
      assert.ok(Math.abs(variance - k) / k < 0.06, `Gamma(${k}) variance ${variance}`);
    }
    assert.throws(() => sampleGamma(0, rng), /shape must be > 0/);
  });
});

describe("mixup", () => {
  const size = 6;
  const width = 4;
  const classes = 3;
  const inputs = Float32Array.from({ length: size * width }, (_, i) => i);
  const labels = new Float32Array(size * classes);
  for (let i = 0; i < size; i++) labels[i * classes + (i % classes)] = 1;

  it("mixes each sample with its partner by its own lambda, inputs and labels alike", () => {
    const r = mixup({ size, inputs, labels }, randomFor(3, 0, 0, "mixup"));
    assert.deepEqual(Array.from(r.partner).sort(), [0, 1, 2, 3, 4, 5]);
    assert.equal(new Set(r.lambda).size, size);
    for (let i = 0; i < size; i++) {
      const l = r.lambda[i];
      const p = r.partner[i];
      for (let e = 0; e < width; e++) {
        const expected = l * inputs[i * width + e] + (1 - l) * inputs[p * width + e];
        assert.ok(Math.abs(r.inputs[i * width + e] - expected) < 1e-4);
      }
      let total = 0;
      for (let c = 0; c < classes; c++) {
        const expected = l * labels[i * classes + c] + (1 - l) * labels[p * classes + c];
        assert.ok(Math.abs(r.labels[i * classes + c] - expected) < 1e-6);
        total += r.labels[i * classes + c];
      }
      assert.ok(Math.abs(total - 1) < 1e-6, "mixed one-hot labels still sum to 1");
    }
    // The input batch is left as it was.
    assert.equal(inputs[5], 5);
  });

  it("is seeded, and leaves labels alone when asked", () => {
    const a = mixup({ size, inputs, labels }, randomFor(4, 0, 0, "mixup"));
    const b = mixup({ size, inputs, labels }, randomFor(4, 0, 0, "mixup"));
    const c = mixup({ size, inputs, labels }, randomFor(5, 0, 0, "mixup"));
    assert.deepEqual(a.inputs, b.inputs);
    assert.notDeepEqual(a.lambda, c.lambda);
    const kept = mixup({ size, inputs, labels }, randomFor(4, 0, 0, "mixup"), { mixLabels: false });
    assert.deepEqual(kept.labels, labels);
    assert.deepEqual(kept.inputs, a.inputs);
    assert.throws(
      () => mixup({ size: 5, inputs, labels }, randomFor(4, 0, 0, "mixup")),
      /do not split into 5/,
    );
  });

  it("mixes a Batch's audio and labels, not its video", () => {
    const batch = {
      size: 2,
      video: Float32Array.from([1, 2]),
      videoShape: [2, 1, 1, 1, 1],
      audio: Float32Array.from([0, 0, 1, 1]),
      audioMask: Float32Array.from([1, 1]),
      textIds: new Int32Array(0),
      textMask: new Float32Array(0),
      labels: Float32Array.from([1, 0, 0, 1]),
      sources: ["a", "a"],
      ids: ["x", "y"],
    } satisfies Batch;
    let rng = randomFor(6, 0, 0, "mixup");
    let mixed = mixupBatch(batch, "audio", rng);
    // Draw until a batch pairs the two samples (a sample may draw itself, as tf.random.shuffle allows).
    for (let k = 1; mixed.audio[0] === 0; k++) {
      rng = randomFor(6, 0, k, "mixup");
      mixed = mixupBatch(batch, "audio", rng);
    }
    assert.equal(mixed.video, batch.video);
    assert.ok(Math.abs(mixed.audio[0] + mixed.labels[0] - 1) < 1e-6, "sample 0 keeps lambda of itself");
    assert.ok(Math.abs(mixed.labels[0] + mixed.labels[1] - 1) < 1e-6);
  });
});
