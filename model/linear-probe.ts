/**
 * Linear evaluation on frozen features, the paper's low-rank classifier, in plain typed arrays (no TensorFlow.js):
 * logits = (x U + b1) V + b2 with U: d x 128, V: 128 x C, trained with softmax cross-entropy while each step trains a
 * random 10 % of the 128 components.
 *
 * The reference code (vatt/utils/eval/evaluators.py, LinearClsHead) writes the same model as Keras layers:
 * Dense(128, linear, glorot_normal) -> Dropout(0.9) -> Dense(C, softmax, glorot_normal, L2 0.1 on the kernel),
 * Adam lr 5e-4, batch 64, 1000 epochs, categorical cross-entropy. Reconciled here:
 * - `mask: "step"` (default, the paper's words): each step draws ONE set of round(10 % x 128) = 13 components for
 *   the whole batch; only they carry the hidden activation (scaled by 128 / 13 so the expected logit is the full
 *   model's, as inverted dropout does). `mask: "sample"` is Keras' Dropout(0.9) exactly: an independent keep-mask of
 *   probability 0.1 per sample and component, kept units scaled by 10. Both leave the test-time model whole.
 * - Cost: either way only the kept (row, component) pairs are computed: ~10 % of the full model's arithmetic.
 * - The L2 term is Keras' l2(0.1): loss += 0.1 * sum(V^2) over the whole kernel (not its biases), every step.
 * - Adam is Keras' (beta1 0.9, beta2 0.999, eps 1e-7, bias correction by the global step). With "step", a step
 *   trains only its components: their columns of U and b1, their rows of V (data and L2 gradient) and b2; the others
 *   and their Adam moments stay as they are (the paper's "only train a random subset"). With "sample" (Keras), every
 *   parameter is updated every step, a zero gradient included (moments decay, momentum still moves it).
 * - Initialisation: glorot_normal (truncated normal, std sqrt(2 / (fan_in + fan_out)) / 0.8796, cut at 2 std),
 *   biases 0, all drawn from one seeded generator.
 * Test predictions: logits of the whole model; the reference averages the softmax outputs of the test windows
 * (`softmaxRows` then `averageWindows`).
 */
import { type Random, randomFor } from "../core/random.js";

export interface LowRankOptions {
  /** Components of the factorisation (reference 128). */
  rank: number;
  /** Share of the components trained each step (paper 10 %; Keras Dropout(0.9) keeps 0.1). */
  keep: number;
  mask: "step" | "sample";
  learningRate: number;
  batchSize: number;
  epochs: number;
  /** Keras l2 factor on V: loss += l2 * sum(V^2). */
  l2: number;
  seed: number;
  /** Called after each epoch with the mean training loss of that epoch (progress, early inspection). */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

/** The reference's settings (1000 epochs: scale down for quick runs). */
export const referenceLowRank: LowRankOptions = {
  rank: 128,
  keep: 0.1,
  mask: "step",
  learningRate: 5e-4,
  batchSize: 64,
  epochs: 1000,
  l2: 0.1,
  seed: 1,
};

/** Frozen features, row-major [samples x dim]. */
export interface FeatureMatrix {
  data: Float32Array;
  samples: number;
  dim: number;
}

export interface LowRankModel {
  dim: number;
  rank: number;
  classes: number;
  /** U transposed, [rank x dim] (a component's column of U is a contiguous row here). */
  ut: Float32Array;
  b1: Float32Array;
  /** V, [rank x classes]. */
  v: Float32Array;
  b2: Float32Array;
}

export function checkFeatures(f: FeatureMatrix, where: string): void {
  if (f.data.length !== f.samples * f.dim)
    throw new RangeError(`${where}: ${f.data.length} values for ${f.samples} samples x ${f.dim} dims`);
}

export function checkClassLabels(
  labels: ArrayLike<number>,
  samples: number,
  classes: number,
  where: string,
): void {
  if (labels.length !== samples)
    throw new RangeError(`${where}: ${labels.length} labels for ${samples} samples`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < classes))
      throw new RangeError(`${where}: label ${y} of sample ${i} is not a class index in [0, ${classes})`);
  }
}

/** Keras' glorot_normal: truncated normal (redrawn beyond 2 std) with std sqrt(2 / (fanIn + fanOut)) / 0.8796. */
function glorotNormal(out: Float32Array, fanIn: number, fanOut: number, rng: Random): void {
  const std = Math.sqrt(2 / (fanIn + fanOut)) / 0.8796256610342398;
  for (let i = 0; i < out.length; i++) {
    let z = rng.normal();
    while (Math.abs(z) > 2) z = rng.normal();
    out[i] = z * std;
  }
}

/**
 * The components trained at one step ("step" mask): round(keep * rank) distinct indices (at least 1), drawn by a
 * partial Fisher-Yates shuffle, in increasing order.
 */
export function stepComponents(rank: number, keep: number, rng: Random): Int32Array {
  const count = Math.min(rank, Math.max(1, Math.round(keep * rank)));
  const pool = Int32Array.from({ length: rank }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(rank - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.slice(0, count).sort();
}

/** A permutation of [0, n) from a seeded generator. */
export function permutation(n: number, rng: Random): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

interface Adam {
  m: Float32Array;
  v: Float32Array;
}

const adamOf = (n: number): Adam => ({ m: new Float32Array(n), v: new Float32Array(n) });

/** Keras Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps). */
function adamStep(p: Float32Array, g: Float32Array, s: Adam, lrT: number, from = 0, to = p.length): void {
  const { m, v } = s;
  for (let i = from; i < to; i++) {
    const gi = g[i];
    const mi = 0.9 * m[i] + 0.1 * gi;
    const vi = 0.999 * v[i] + 0.001 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= (lrT * mi) / (Math.sqrt(vi) + 1e-7);
  }
}

/** In-place softmax of each row of [rows x cols]; returns the rows' summed -log p[label] when labels are given. */
function softmaxInPlace(z: Float32Array, rows: number, cols: number, labels?: ArrayLike<number>): number {
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < cols; c++) if (z[o + c] > max) max = z[o + c];
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(z[o + c] - max);
      z[o + c] = e;
      sum += e;
    }
    for (let c = 0; c < cols; c++) z[o + c] /= sum;
    if (labels) loss -= Math.log(Math.max(z[o + labels[r]], 1e-30));
  }
  return loss;
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[ao + i] * b[bo + i];
    s1 += a[ao + i + 1] * b[bo + i + 1];
    s2 += a[ao + i + 2] * b[bo + i + 2];
    s3 += a[ao + i + 3] * b[bo + i + 3];
  }
  for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
  return s0 + s1 + s2 + s3;
}

/** y[yo..] += alpha * x[xo..], n values. */
function axpy(alpha: number, x: Float32Array, xo: number, y: Float32Array, yo: number, n: number): void {
  for (let i = 0; i < n; i++) y[yo + i] += alpha * x[xo + i];
}

/** Trains the low-rank classifier on frozen features; labels are class indices in [0, classes). */
export function trainLowRank(
  features: FeatureMatrix,
  labels: ArrayLike<number>,
  classes: number,
  options: Partial<LowRankOptions> = {},
): LowRankModel {
  const o = { ...referenceLowRank, ...options };
  checkFeatures(features, "trainLowRank");
  checkClassLabels(labels, features.samples, classes, "trainLowRank");
  if (!(o.keep > 0 && o.keep <= 1))
    throw new RangeError(`trainLowRank: keep must be in (0, 1], got ${o.keep}`);
  const { dim: d, samples: n, data: x } = features;
  const r = o.rank;
  const init = randomFor(o.seed, -1, -1, "linear-probe/init");
  const model: LowRankModel = {
    dim: d,
    rank: r,
    classes,
    ut: new Float32Array(r * d),
    b1: new Float32Array(r),
    v: new Float32Array(r * classes),
    b2: new Float32Array(classes),
  };
  glorotNormal(model.ut, d, r, init);
  glorotNormal(model.v, r, classes, init);
  const states = [adamOf(r * d), adamOf(r), adamOf(r * classes), adamOf(classes)];
  const grads = [
    new Float32Array(r * d),
    new Float32Array(r),
    new Float32Array(r * classes),
    new Float32Array(classes),
  ];
  const [gUt, gB1, gV, gB2] = grads; // gUt rows of components inactive this step hold stale values: unread
  const params = [model.ut, model.b1, model.v, model.b2];
  const bMax = o.batchSize;
  const hidden = new Float32Array(bMax * r); // pre-mask activations of the active components
  const gate = new Float32Array(bMax * r); // mask x scale per (row, active component)
  const z = new Float32Array(bMax * classes);
  const dHidden = new Float32Array(bMax * r);
  const all = Int32Array.from({ length: r }, (_, i) => i);
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = permutation(n, randomFor(o.seed, epoch, -1, "linear-probe/shuffle"));
    let epochLoss = 0;
    for (let start = 0; start < n; start += bMax) {
      const b = Math.min(bMax, n - start);
      const maskRng = randomFor(o.seed, epoch, step, "linear-probe/mask");
      const active = o.mask === "step" ? stepComponents(r, o.keep, maskRng) : all;
      const k = active.length;
      if (o.mask === "step") gate.fill(r / k, 0, b * k);
      else for (let i = 0; i < b * k; i++) gate[i] = maskRng.next() < o.keep ? 1 / o.keep : 0;
      // Forward: hidden[i, j] = x_i . U[:, a_j] + b1[a_j]; z = b2 + sum_j gate * hidden * V[a_j, :].
      for (let i = 0; i < b; i++) {
        const xo = order[start + i] * d;
        const zo = i * classes;
        z.set(model.b2, zo);
        for (let j = 0; j < k; j++) {
          const g = gate[i * k + j];
          if (g === 0) continue; // a dropped unit needs neither its activation nor its gradient
          const a = active[j];
          const h = dot(x, xo, model.ut, a * d, d) + model.b1[a];
          hidden[i * k + j] = h;
          axpy(g * h, model.v, a * classes, z, zo, classes);
        }
      }
      const batchLabels = Int32Array.from({ length: b }, (_, i) => labels[order[start + i]]);
      let loss = softmaxInPlace(z, b, classes, batchLabels) / b;
      // dz = (p - onehot) / b
      for (let i = 0; i < b; i++) {
        for (let c = 0; c < classes; c++) z[i * classes + c] /= b;
        z[i * classes + batchLabels[i]] -= 1 / b;
      }
      // Only the active components' gradient rows are written below (gV is overwritten by the L2 term).
      for (const a of active) gUt.fill(0, a * d, (a + 1) * d);
      gB1.fill(0);
      gB2.fill(0);
      // L2 on the whole V kernel.
      let vSquares = 0;
      for (let i = 0; i < model.v.length; i++) {
        vSquares += model.v[i] * model.v[i];
        gV[i] = 2 * o.l2 * model.v[i];
      }
      loss += o.l2 * vSquares;
      for (let i = 0; i < b; i++) {
        const zo = i * classes;
        axpy(1, z, zo, gB2, 0, classes);
        for (let j = 0; j < k; j++) {
          const g = gate[i * k + j];
          if (g === 0) {
            dHidden[i * k + j] = 0;
            continue;
          }
          const a = active[j];
          axpy(g * hidden[i * k + j], z, zo, gV, a * classes, classes);
          dHidden[i * k + j] = g * dot(z, zo, model.v, a * classes, classes);
        }
      }
      for (let j = 0; j < k; j++) {
        const a = active[j];
        for (let i = 0; i < b; i++) {
          const dh = dHidden[i * k + j];
          if (dh === 0) continue;
          gB1[a] += dh;
          axpy(dh, x, order[start + i] * d, gUt, a * d, d);
        }
      }
      step++;
      const lrT = (o.learningRate * Math.sqrt(1 - 0.999 ** step)) / (1 - 0.9 ** step);
      if (o.mask === "step") {
        // Only this step's components are trained: their columns of U, biases and rows of V (and b2).
        for (const a of active) {
          adamStep(model.ut, gUt, states[0], lrT, a * d, (a + 1) * d);
          adamStep(model.b1, gB1, states[1], lrT, a, a + 1);
          adamStep(model.v, gV, states[2], lrT, a * classes, (a + 1) * classes);
        }
        adamStep(model.b2, gB2, states[3], lrT);
      } else {
        for (let p = 0; p < params.length; p++) adamStep(params[p], grads[p], states[p], lrT);
      }
      epochLoss += loss * b;
    }
    o.onEpoch?.(epoch, epochLoss / n);
  }
  return model;
}

/** Logits [samples x classes] of the whole model (no mask). */
export function lowRankLogits(model: LowRankModel, features: FeatureMatrix): Float32Array {
  checkFeatures(features, "lowRankLogits");
  if (features.dim !== model.dim)
    throw new RangeError(`lowRankLogits: features have ${features.dim} dims, the classifier ${model.dim}`);
  const { dim: d, rank: r, classes } = model;
  const out = new Float32Array(features.samples * classes);
  for (let i = 0; i < features.samples; i++) {
    out.set(model.b2, i * classes);
    for (let a = 0; a < r; a++) {
      const h = dot(features.data, i * d, model.ut, a * d, d) + model.b1[a];
      axpy(h, model.v, a * classes, out, i * classes, classes);
    }
  }
  return out;
}

/** Row-wise softmax of [rows x cols] scores (a copy). */
export function softmaxRows(scores: Float32Array, cols: number): Float32Array {
  const out = Float32Array.from(scores);
  softmaxInPlace(out, scores.length / cols, cols);
  return out;
}

/**
 * Mean over each video's `windows` consecutive rows: [videos * windows x cols] -> [videos x cols] (the reference
 * averages the softmax outputs of the 4 test windows; average logits or probabilities as the protocol says).
 */
export function averageWindows(scores: Float32Array, cols: number, windows: number): Float32Array {
  const rows = scores.length / cols;
  if (!Number.isInteger(rows / windows))
    throw new RangeError(`averageWindows: ${rows} rows are not a whole number of ${windows}-window videos`);
  const videos = rows / windows;
  const out = new Float32Array(videos * cols);
  for (let v = 0; v < videos; v++)
    for (let w = 0; w < windows; w++)
      axpy(1 / windows, scores, (v * windows + w) * cols, out, v * cols, cols);
  return out;
}
