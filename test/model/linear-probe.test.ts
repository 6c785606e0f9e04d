import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Random, randomFor } from "../../core/random.js";
import {
  averageWindows,
  type FeatureMatrix,
  lowRankLogits,
  softmaxRows,
  stepComponents,
  trainLowRank,
} from "../../model/linear-probe.js";
import {
  fitOneVsRest,
  heldOutSplit,
  svmScores,
  trainBinarySvm,
  trainLinearSvm,
} from "../../model/linear-svm.js";

/** Gaussian blobs: class means ~ N(0, separation^2) per dimension, unit noise around them. */
function blobs(
  classes: number,
  perClass: number,
  dim: number,
  separation: number,
  rng: Random,
  means?: Float64Array,
  offset = 0,
): { features: FeatureMatrix; labels: Int32Array; means: Float64Array } {
  const m = means ?? Float64Array.from({ length: classes * dim }, () => rng.normal() * separation);
  const n = classes * perClass;
  const data = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    labels[i] = k;
    for (let j = 0; j < dim; j++) data[i * dim + j] = m[k * dim + j] + rng.normal() + offset;
  }
  return { features: { data, samples: n, dim }, labels, means: m };
}

function accuracy(scores: Float32Array, labels: Int32Array, classes: number): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) {
    let arg = 0;
    for (let k = 1; k < classes; k++) if (scores[i * classes + k] > scores[i * classes + arg]) arg = k;
    if (arg === labels[i]) hits++;
  }
  return hits / labels.length;
}

function meanLoss(scores: Float32Array, labels: Int32Array, classes: number): number {
  const p = softmaxRows(scores, classes);
  let s = 0;
  for (let i = 0; i < labels.length; i++) s -= Math.log(p[i * classes + labels[i]]);
  return s / labels.length;
}

describe("low-rank linear classifier", () => {
  it("trains a random ~10 % of the 128 components each step, different each step, seeded", () => {
    const sets = Array.from({ length: 400 }, (_, step) =>
      stepComponents(128, 0.1, randomFor(1, 0, step, "mask")),
    );
    const counts = new Float64Array(128);
    for (const s of sets) {
      assert.equal(s.length, 13);
      assert.equal(new Set(s).size, 13);
      for (const c of s) {
        assert.ok(c >= 0 && c < 128);
        counts[c]++;
      }
    }
    // Every component is picked about 13 / 128 of the steps (binomial sd ~6 of 40.6).
    for (const c of counts) assert.ok(c > 15 && c < 70, `picked ${c} times of 400`);
    for (let i = 1; i < sets.length; i++) assert.notDeepEqual(sets[i], sets[i - 1]);
    assert.deepEqual(stepComponents(128, 0.1, randomFor(1, 0, 7, "mask")), sets[7]);
  });

  it("one full-batch step moves every parameter against its numerical gradient (Adam's first step is lr sign(g))", () => {
    const rng = randomFor(2, 0, 0, "grad-check");
    const { features, labels } = blobs(3, 6, 5, 1, rng);
    const options = { rank: 4, keep: 1, l2: 0.1, learningRate: 1e-4, batchSize: 64, seed: 3 };
    const before = trainLowRank(features, labels, 3, { ...options, epochs: 0 });
    const after = trainLowRank(features, labels, 3, { ...options, epochs: 1 });
    const loss = (m: typeof before) => {
      let l2 = 0;
      for (const v of m.v) l2 += v * v;
      return meanLoss(lowRankLogits(m, features), labels, 3) + 0.1 * l2;
    };
    let checked = 0;
    for (const key of ["ut", "b1", "v", "b2"] as const) {
      for (let i = 0; i < before[key].length; i++) {
        const plus = { ...before, [key]: Float32Array.from(before[key]) };
        const minus = { ...before, [key]: Float32Array.from(before[key]) };
        plus[key][i] += 1e-3;
        minus[key][i] -= 1e-3;
        const g = (loss(plus) - loss(minus)) / 2e-3;
        if (Math.abs(g) < 1e-3) continue;
        const moved = after[key][i] - before[key][i];
        assert.ok(
          Math.abs(moved + 1e-4 * Math.sign(g)) < 2e-6,
          `${key}[${i}]: moved ${moved}, gradient ${g}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 30, `checked ${checked}`);
  });

  it("a step trains only its components; the others keep their parameters", () => {
    const rng = randomFor(8, 0, 0, "only-active");
    const { features, labels } = blobs(4, 8, 6, 1, rng);
    const options = { rank: 20, keep: 0.1, batchSize: 64, seed: 5 };
    const before = trainLowRank(features, labels, 4, { ...options, epochs: 0 });
    const after = trainLowRank(features, labels, 4, { ...options, epochs: 1 }); // 32 samples: one step
    const active = new Set(stepComponents(20, 0.1, randomFor(5, 0, 0, "linear-probe/mask")));
    assert.equal(active.size, 2);
    for (let a = 0; a < 20; a++) {
      const row = (m: typeof before) => Array.from(m.ut.subarray(a * 6, (a + 1) * 6)).concat(m.b1[a]);
      const vRow = (m: typeof before) => Array.from(m.v.subarray(a * 4, (a + 1) * 4));
      if (active.has(a)) {
        assert.notDeepEqual(row(after), row(before));
        assert.notDeepEqual(vRow(after), vRow(before));
      } else {
        assert.deepEqual(row(after), row(before));
        assert.deepEqual(vRow(after), vRow(before));
      }
    }
    assert.notDeepEqual(after.b2, before.b2);
  });

  it("learns a separable problem and beats chance on a hard one; seeded", () => {
    const rng = randomFor(4, 0, 0, "blobs");
    const classes = 8;
    const easy = blobs(classes, 40, 24, 2, rng);
    const easyTest = blobs(classes, 20, 24, 0, rng, easy.means);
    const model = trainLowRank(easy.features, easy.labels, classes, { epochs: 60 });
    const easyAccuracy = accuracy(lowRankLogits(model, easyTest.features), easyTest.labels, classes);
    assert.ok(easyAccuracy > 0.95, `separable: ${easyAccuracy}`);

    const hard = blobs(classes, 40, 24, 0.25, rng);
    const hardTest = blobs(classes, 40, 24, 0, rng, hard.means);
    for (const mask of ["step", "sample"] as const) {
      const m = trainLowRank(hard.features, hard.labels, classes, { epochs: 60, mask });
      const a = accuracy(lowRankLogits(m, hardTest.features), hardTest.labels, classes);
      // Chance is 1/8 (binomial sd 0.018 over 320 test samples); measured 0.33 (step) and 0.38 (sample).
      assert.ok(a > 2 / classes && a < 0.95, `hard (${mask}): ${a}`);
    }
    const again = trainLowRank(easy.features, easy.labels, classes, { epochs: 2 });
    assert.deepEqual(again.v, trainLowRank(easy.features, easy.labels, classes, { epochs: 2 }).v);
    assert.notDeepEqual(again.v, trainLowRank(easy.features, easy.labels, classes, { epochs: 2, seed: 9 }).v);
  });

  it("averages each video's windows", () => {
    const scores = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(Array.from(averageWindows(scores, 2, 2)), [2, 3, 6, 7]);
    assert.throws(() => averageWindows(scores, 2, 3), /not a whole number of 3-window videos/);
    const p = softmaxRows(Float32Array.from([0, Math.log(3)]), 2);
    assert.ok(Math.abs(p[0] - 0.25) < 1e-7 && Math.abs(p[1] - 0.75) < 1e-7);
  });
});

describe("linear SVM", () => {
  it("dual coordinate descent reaches the primal optimum (squared hinge)", () => {
    const rng = randomFor(5, 0, 0, "svm-kkt");
    const n = 60;
    const dim1 = 4;
    const x = new Float32Array(n * dim1);
    const y = new Int8Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2 === 0 ? 1 : -1;
      for (let j = 0; j < dim1 - 1; j++) x[i * dim1 + j] = rng.normal() + 0.7 * y[i];
      x[i * dim1 + dim1 - 1] = 1;
    }
    const norms = Float64Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let j = 0; j < dim1; j++) s += x[i * dim1 + j] ** 2;
      return s;
    });
    const c = 0.5;
    const { w } = trainBinarySvm(
      x,
      dim1,
      y,
      norms,
      c,
      { loss: "squared_hinge", tolerance: 1e-6, maxPasses: 5000 },
      (pass) => randomFor(5, pass, 0, "svm-order"),
    );
    // Primal gradient: w - 2C sum_i max(0, 1 - y_i w.x_i) y_i x_i = 0 at the optimum.
    const grad = Float64Array.from(w);
    for (let i = 0; i < n; i++) {
      let margin = 0;
      for (let j = 0; j < dim1; j++) margin += w[j] * x[i * dim1 + j];
      const slack = Math.max(0, 1 - y[i] * margin);
      for (let j = 0; j < dim1; j++) grad[j] -= 2 * c * slack * y[i] * x[i * dim1 + j];
    }
    const norm = Math.hypot(...grad);
    assert.ok(norm < 1e-4 * Math.hypot(...w), `primal gradient ${norm}`);
  });

  it("standardises, learns a separable problem, beats chance on a hard one, and picks C on held-out data", () => {
    const rng = randomFor(6, 0, 0, "svm-blobs");
    const classes = 6;
    // An offset of 5 on every feature, for the standardisation to take away.
    const easy = blobs(classes, 30, 20, 2, rng, undefined, 5);
    const easyTest = blobs(classes, 20, 20, 0, rng, easy.means, 5);
    const easyModel = fitOneVsRest(easy.features, easy.labels, classes, 1e-2);
    const easyAccuracy = accuracy(svmScores(easyModel, easyTest.features), easyTest.labels, classes);
    assert.ok(easyAccuracy > 0.95, `separable: ${easyAccuracy}`);
    assert.ok(Math.abs(easyModel.standardiser.mean[0] - 5) < 1.5);

    const hard = blobs(classes, 40, 20, 0.3, rng, undefined, 5);
    const hardTest = blobs(classes, 40, 20, 0, rng, hard.means, 5);
    const selection = trainLinearSvm(hard.features, hard.labels, classes, { cGrid: [1e-4, 1e-2, 1] });
    assert.deepEqual(
      selection.validation.map((v) => v.c),
      [1e-4, 1e-2, 1],
    );
    const best = Math.max(...selection.validation.map((v) => v.accuracy));
    assert.equal(selection.validation.find((v) => v.accuracy === best)?.c, selection.model.c);
    const hardAccuracy = accuracy(svmScores(selection.model, hardTest.features), hardTest.labels, classes);
    assert.ok(hardAccuracy > 2 / classes && hardAccuracy < 0.95, `hard: ${hardAccuracy}`);
  });

  it("holds out whole groups when asked", () => {
    const groups = Int32Array.from({ length: 100 }, (_, i) => Math.floor(i / 10));
    const { fit, heldOut } = heldOutSplit(100, 0.2, 1, groups);
    assert.equal(heldOut.length, 20);
    const heldGroups = new Set(Array.from(heldOut, (i) => groups[i]));
    for (const i of fit) assert.ok(!heldGroups.has(groups[i]));
    assert.deepEqual(heldOutSplit(100, 0.2, 1, groups).heldOut, heldOut);
    assert.equal(heldOutSplit(100, 0.25, 1).heldOut.length, 25);
  });
});
