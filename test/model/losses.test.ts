import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { milNceLoss, nceLoss } from "../../model/losses.js";
import { testBackend } from "./helpers.js";

before(async () => {
  await testBackend();
});

/** The reference formula in plain numbers, written independently of the tensor code. */
function milNceByHand(video: number[][], text: number[][], mask: number[][], tau: number): number {
  const b = video.length;
  const k = text.length / b;
  const unit = (x: number[]) => {
    const n = Math.hypot(...x);
    return x.map((y) => y / n);
  };
  const v = video.map(unit);
  const t = text.map(unit);
  const dot = (x: number[], y: number[]) => x.reduce((a, xi, i) => a + xi * y[i], 0);
  const lse = (xs: number[]) => {
    const m = Math.max(...xs);
    return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
  };
  const valid = mask.map((row) => (row.some((x) => x > 0) ? 1 : 0));
  const count = valid.reduce((a: number, x) => a + x, 0);
  let total = 0;
  for (let i = 0; i < b; i++) {
    if (!valid[i]) continue;
    const all: number[] = [];
    const pos: number[] = [];
    for (let j = 0; j < b; j++) {
      for (let l = 0; l < k; l++) if (mask[j][l]) all.push(dot(v[i], t[j * k + l]) / tau);
    }
    for (let j = 0; j < b; j++)
      for (let l = 0; l < k; l++) if (mask[i][l]) all.push(dot(v[j], t[i * k + l]) / tau);
    for (let l = 0; l < k; l++) if (mask[i][l]) pos.push(dot(v[i], t[i * k + l]) / tau);
    total += (lse(all) - lse(pos)) * (b / count);
  }
  return total / b;
}

function lossValue(video: number[][], text: number[][], mask: number[][], tau: number): number {
  return tf.tidy(
    () => milNceLoss(tf.tensor2d(video), tf.tensor2d(text), tf.tensor2d(mask), tau).dataSync()[0],
  );
}

test("NCE of two orthogonal pairs: log(2e + 2) - 1 at tau = 1", () => {
  const v = [
    [1, 0],
    [0, 1],
  ];
  const got = tf.tidy(() => nceLoss(tf.tensor2d(v), tf.tensor2d(v), tf.tensor1d([1, 1]), 1).dataSync()[0]);
  assert.ok(Math.abs(got - (Math.log(2 * Math.E + 2) - 1)) < 1e-5, `${got}`);
});

test("NCE uses one symmetric denominator with the positive in it", () => {
  // Video 0 matches audio 0 exactly; video 1 is between. Hand: row i sums exp over s(v_i, a_j) and s(v_j, a_i).
  const video = [
    [1, 0],
    [1, 1],
  ];
  const audio = [
    [1, 0],
    [0, 1],
  ];
  const tau = 0.5;
  const s = (i: number, j: number) => {
    const v = video[i].map((x) => x / Math.hypot(...video[i]));
    const a = audio[j].map((x) => x / Math.hypot(...audio[j]));
    return (v[0] * a[0] + v[1] * a[1]) / tau;
  };
  const row = (i: number) =>
    Math.log(Math.exp(s(i, 0)) + Math.exp(s(i, 1)) + Math.exp(s(0, i)) + Math.exp(s(1, i))) - s(i, i);
  const expected = (row(0) + row(1)) / 2;
  const got = tf.tidy(
    () => nceLoss(tf.tensor2d(video), tf.tensor2d(audio), tf.tensor1d([1, 1]), tau).dataSync()[0],
  );
  assert.ok(Math.abs(got - expected) < 1e-5, `${got} vs ${expected}`);
});

test("MIL-NCE with K = 3 positives, a masked caption and a sample without text", () => {
  const video = [
    [0.3, -1, 0.5],
    [1, 0.2, -0.1],
    [-0.4, 0.6, 0.9],
  ];
  const text = [
    [1, 0, 0],
    [0.2, -0.7, 0.1],
    [0.5, 0.5, 0.5],
    [0.9, 0.1, -0.3],
    [-0.2, 0.4, 0.8],
    [0.1, 0.1, 1],
    [0, 0, 0.001], // sample 2 has no text: these rows are padding
    [0, 0.001, 0],
    [0.001, 0, 0],
  ];
  const mask = [
    [1, 1, 0],
    [1, 1, 1],
    [0, 0, 0],
  ];
  for (const tau of [0.07, 0.5]) {
    const expected = milNceByHand(video, text, mask, tau);
    const got = lossValue(video, text, mask, tau);
    assert.ok(
      Math.abs(got - expected) < 1e-4 * Math.max(1, Math.abs(expected)),
      `tau ${tau}: ${got} vs ${expected}`,
    );
  }
  // Per-sample scaling B / valid: the loss equals the mean over valid samples only.
  const full = lossValue(video.slice(0, 2), text.slice(0, 6), mask.slice(0, 2), 0.5);
  assert.ok(Number.isFinite(full));
});

test("all-masked text gives a zero loss, not NaN", () => {
  const got = lossValue(
    [
      [1, 0],
      [0, 1],
    ],
    [
      [1, 0],
      [0, 1],
    ],
    [[0], [0]],
    0.07,
  );
  assert.equal(got, 0);
});

test("the loss gradient matches finite differences", () => {
  const video = [
    [0.3, -1, 0.5],
    [1, 0.2, -0.1],
  ];
  const text = [
    [1, 0, 0.2],
    [0.2, -0.7, 0.1],
    [0.5, 0.5, 0.5],
    [0.9, 0.1, -0.3],
  ];
  const mask = [
    [1, 1],
    [1, 0],
  ];
  const tau = 0.5;
  const grad = tf.tidy(() => {
    const g = tf.grad((v: tf.Tensor) => milNceLoss(v, tf.tensor2d(text), tf.tensor2d(mask), tau));
    return Array.from(g(tf.tensor2d(video)).dataSync());
  });
  const h = 1e-3;
  for (let i = 0; i < video.length; i++) {
    for (let d = 0; d < 3; d++) {
      const plus = video.map((r) => r.slice());
      const minus = video.map((r) => r.slice());
      plus[i][d] += h;
      minus[i][d] -= h;
      const numeric = (milNceByHand(plus, text, mask, tau) - milNceByHand(minus, text, mask, tau)) / (2 * h);
      assert.ok(
        Math.abs(grad[i * 3 + d] - numeric) < 2e-3,
        `d/dv[${i}][${d}]: ${grad[i * 3 + d]} vs ${numeric}`,
      );
    }
  }
});
