import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import sharp from "sharp";
import { randomFor } from "../../core/random.js";
import {
  averagePrecision,
  confusionMatrix,
  dPrime,
  majorityTopK,
  meanClassAccuracy,
  multiLabelMetrics,
  multiLabelReport,
  normalQuantile,
  rocAuc,
  singleLabelReport,
  targetsFromLabelLists,
  topKAccuracy,
} from "../../sinks/classification-metrics.js";
import { confusionSvg, writeConfusionPng } from "../../sinks/confusion-plot.js";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const matrix = (rows: number[][]) => ({
  scores: Float64Array.from(rows.flat()),
  samples: rows.length,
  classes: rows[0].length,
});

/** Standard normal density integrated by Simpson's rule over [a, b] (an independent check of the quantile). */
function normalMass(a: number, b: number, intervals = 4000): number {
  const h = (b - a) / intervals;
  const pdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  let s = pdf(a) + pdf(b);
  for (let i = 1; i < intervals; i++) s += (i % 2 === 1 ? 4 : 2) * pdf(a + i * h);
  return (s * h) / 3;
}

describe("top-k accuracy", () => {
  const m = matrix([
    [0.1, 0.5, 0.5, 0.2], // label 1 ties with class 2: rank 1
    [0.9, 0.1, 0.3, 0.3], // label 0 alone on top: rank 0
    [0.3, 0.3, 0.3, 0.3], // label 3 ties with all: rank 3
    [0.2, Number.NaN, 0.1, 0], // label 0, a NaN elsewhere counts against it: rank 1
  ]);
  const labels = [1, 0, 3, 0];

  it("counts a tie with the label against it", () => {
    assert.equal(topKAccuracy(m, labels, 1), 1 / 4);
    assert.equal(topKAccuracy(m, labels, 2), 3 / 4);
    assert.equal(topKAccuracy(m, labels, 3), 3 / 4);
    assert.equal(topKAccuracy(m, labels, 4), 1);
  });

  it("rejects labels out of range and rows of the wrong length", () => {
    assert.throws(() => topKAccuracy(m, [1, 0, 4, 0], 1), /label 4 of sample 2/);
    assert.throws(() => topKAccuracy({ ...m, classes: 3 }, labels, 1), /one row per sample/);
  });

  it("confusion matrix, mean class accuracy and chance levels", () => {
    const s = matrix([
      [3, 1, 0],
      [0, 2, 1],
      [2, 1, 0], // true 1 predicted 0
      [0, 0, 1],
      [1, 0, 0],
    ]);
    const y = [0, 1, 1, 2, 0];
    assert.deepEqual(Array.from(confusionMatrix(s, y)), [2, 0, 0, 1, 1, 0, 0, 0, 1]);
    const mca = meanClassAccuracy(s, y);
    close(mca.value, (1 + 0.5 + 1) / 3);
    assert.equal(mca.absentClasses, 0);
    // A tie for the top score is a miss for mean class accuracy too (the confusion matrix gives it to class 0).
    const tied = matrix([
      [1, 1, 0],
      [0, 2, 1],
    ]);
    assert.deepEqual(Array.from(meanClassAccuracy(tied, [0, 1]).perClass), [0, 1, Number.NaN]);
    assert.equal(meanClassAccuracy(tied, [0, 1]).absentClasses, 1);
    assert.equal(confusionMatrix(tied, [0, 1])[0], 1);
    const r = singleLabelReport(s, y);
    close(r.top1.value, 4 / 5);
    close(r.top1.chance, 1 / 3);
    close(r.top1.majority ?? Number.NaN, 2 / 5);
    close(r.top5.chance, 1);
    close(r.meanClassAccuracy.chance, 1 / 3);
    close(r.meanClassAccuracy.value, (1 + 0.5 + 1) / 3);
    close(majorityTopK(y, 3, 2), 4 / 5);
  });
});

describe("average precision, ROC-AUC, d-prime", () => {
  it("AP is the mean precision at each positive", () => {
    close(averagePrecision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1]), (1 + 2 / 3 + 3 / 5) / 3);
  });

  it("tied scores: sklearn's threshold rule by default, pessimistic on request", () => {
    // A group of 3 at 0.5 holding 2 positives, then a positive at 0.1.
    const s = [0.5, 0.5, 0.5, 0.1];
    const y = [1, 1, 0, 1];
    close(averagePrecision(s, y), (2 * (2 / 3) + 3 / 4) / 3); // 25/36, what sklearn gives
    close(averagePrecision(s, y, "pessimistic"), (1 / 2 + 2 / 3 + 3 / 4) / 3); // 23/36
    assert.ok(Number.isNaN(averagePrecision([1, 2], [0, 0])));
  });

  it("AUC counts a positive-negative tie as one half", () => {
    close(rocAuc([0.9, 0.5, 0.5, 0.1], [0, 1, 0, 1]), 0.5 / 4);
    close(rocAuc([4, 3, 2, 1], [1, 0, 1, 0]), 3 / 4);
    assert.ok(Number.isNaN(rocAuc([1, 2], [1, 1])));
  });

  it("AP and AUC agree with brute-force definitions on random tied scores", () => {
    const rng = randomFor(7, 0, 0, "metrics-test");
    for (let trial = 0; trial < 20; trial++) {
      const n = 40;
      const s = Array.from({ length: n }, () => rng.int(6)); // few distinct values: many ties
      const y = Array.from({ length: n }, () => (rng.bernoulli(0.3) ? 1 : 0));
      if (!y.includes(1) || !y.includes(0)) continue;
      let apSum = 0;
      let pairs = 0;
      let positives = 0;
      for (let i = 0; i < n; i++) {
        if (!y[i]) continue;
        positives++;
        let atOrAbove = 0;
        let posAtOrAbove = 0;
        for (let j = 0; j < n; j++) {
          if (s[j] >= s[i]) {
            atOrAbove++;
            posAtOrAbove += y[j];
          }
          if (!y[j]) pairs += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
        }
        apSum += posAtOrAbove / atOrAbove;
      }
      close(averagePrecision(s, y), apSum / positives);
      close(rocAuc(s, y), pairs / (positives * (n - positives)));
      assert.ok(averagePrecision(s, y, "pessimistic") <= averagePrecision(s, y) + 1e-15);
    }
  });

  it("the normal quantile inverts the normal CDF to ~1e-12, tails included", () => {
    close(normalQuantile(0.975), 1.959963984540054, 1e-14);
    close(normalQuantile(0.5), 0, 0);
    for (const p of [0.001, 0.03, 0.2, 0.4, 0.6, 0.8, 0.97, 0.999]) {
      const x = normalQuantile(p);
      close(0.5 + Math.sign(x) * normalMass(0, Math.abs(x)), p, 1e-12);
    }
    // Tails through the two outer regions: the mass below x, integrated over [|x|, |x| + 12].
    for (const p of [1e-5, 1e-9, 1e-12, 1e-20]) {
      const x = normalQuantile(p);
      const tail = normalMass(-x, -x + 12, 40000);
      assert.ok(Math.abs(tail - p) / p < 1e-8, `p ${p}: tail ${tail}`);
      if (p >= 1e-9) close(normalQuantile(1 - p) + x, 0, 1e-6);
    }
    assert.equal(normalQuantile(1), Number.POSITIVE_INFINITY);
    assert.ok(Number.isNaN(normalQuantile(1.5)));
  });

  it("d-prime is per class, then averaged (not d-prime of the mean AUC)", () => {
    // Class 0: AUC 3/4; class 1: AUC 1/2.
    const m = matrix([
      [4, 4],
      [3, 3],
      [2, 2],
      [1, 1],
    ]);
    const targets = [1, 0, 0, 1, 1, 1, 0, 0];
    const r = multiLabelMetrics(m, targets);
    close(r.aucPerClass[0], 0.75);
    close(r.aucPerClass[1], 0.5);
    close(r.auc, 0.625);
    const perClass = (Math.SQRT2 * (0.6744897501960817 + 0)) / 2;
    close(r.dPrime, perClass, 1e-12);
    const ofMean = Math.SQRT2 * 0.31863936396437514;
    close(dPrime(r.auc), ofMean, 1e-12);
    assert.ok(Math.abs(r.dPrime - ofMean) > 0.02);
    close(r.ap[0], (1 + 2 / 3) / 2);
    close(r.ap[1], (1 / 2 + 2 / 3) / 2);
    close(r.mAP, (r.ap[0] + r.ap[1]) / 2);
  });

  it("skips and counts classes with no positive or no negative; chance levels", () => {
    const m = matrix([
      [0.9, 0.1, 0.3],
      [0.2, 0.8, 0.4],
      [0.7, 0.3, 0.5],
      [0.1, 0.6, 0.2],
    ]);
    const targets = targetsFromLabelLists([[0, 2], [2], [0, 2], [2]], 3);
    const r = multiLabelMetrics(m, targets);
    assert.equal(r.countedClasses, 1);
    assert.equal(r.skippedNoPositive, 1);
    assert.equal(r.skippedNoNegative, 1);
    close(r.mAP, 1);
    close(r.auc, 1);
    assert.ok(Number.isFinite(r.dPrime) && r.dPrime > 6.5, `clamped d-prime ${r.dPrime}`);
    const report = multiLabelReport(m, targets);
    close(report.mAP.chance, 0.5);
    assert.equal(report.auc.chance, 0.5);
    assert.equal(report.dPrime.chance, 0);
  });

  it("a random scorer lands near the chance levels", () => {
    const rng = randomFor(3, 0, 0, "chance");
    const n = 4000;
    const c = 5;
    const scores = Float64Array.from({ length: n * c }, () => rng.next());
    const targets = Uint8Array.from({ length: n * c }, (_, i) =>
      rng.bernoulli(0.1 + 0.1 * (i % c)) ? 1 : 0,
    );
    const r = multiLabelReport({ scores, samples: n, classes: c }, targets);
    assert.ok(Math.abs(r.mAP.value - r.mAP.chance) < 0.03, `${r.mAP.value} vs ${r.mAP.chance}`);
    assert.ok(Math.abs(r.auc.value - 0.5) < 0.03);
    assert.ok(Math.abs(r.dPrime.value) < 0.1);
  });
});

describe("confusion plot", () => {
  it("shades by the row share and renders a PNG", async () => {
    const counts = [8, 2, 0, 0, 5, 5, 1, 0, 9];
    const svg = confusionSvg(counts, 3, { title: "a <b>", classNames: ["x", "y&z", "w"], gridSize: 300 });
    assert.match(svg, /a &lt;b&gt;/);
    assert.match(svg, /y&amp;z/);
    assert.equal((svg.match(/<rect x=/g) ?? []).length, 6 + 1); // non-zero cells + frame
    const dir = await mkdtemp(join(tmpdir(), "vatt-confusion-"));
    try {
      const file = join(dir, "confusion.png");
      await writeConfusionPng(file, counts, 3, { title: "t", gridSize: 300 });
      const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      const pixel = (x: number, y: number) => data[(y * info.width + x) * info.channels];
      // Centre of cell (2, 2) (share 0.9) is darker than cell (0, 1) (share 0.2); cell (0, 2) is empty.
      const left = info.width - 20 - 300;
      const top = info.height - 30 - 300;
      const at = (r: number, c: number) => pixel(left + c * 100 + 50, top + r * 100 + 50);
      assert.ok(at(2, 2) < at(0, 1), `${at(2, 2)} vs ${at(0, 1)}`);
      assert.equal(at(0, 2), 255);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
