/**
 * The SVM variant of linear evaluation (MMV's protocol, which the VATT reference keeps as an option): features
 * standardised with the training set's mean and standard deviation, a linear SVM per class (one-vs-rest), C chosen
 * on a held-out part of the training split, then refit on the whole training split.
 *
 * The solver is LIBLINEAR's dual coordinate descent with shrinking (Hsieh et al. 2008, `solve_l2r_l1l2_svc`), the
 * one sklearn's LinearSVC runs: min_w 1/2 |w|^2 + C sum loss(y_i w.x_i), squared hinge (LinearSVC's default,
 * diagonal 1/(2C), no upper bound) or hinge (upper bound C); the intercept is LIBLINEAR's: a constant feature of 1
 * appended to every sample (so it is regularised too). Stops when the projected gradient's spread is <= tolerance
 * (LIBLINEAR's eps 0.1) or after maxPasses passes over the data.
 */
import { type Random, randomFor } from "../core/random.js";
import { checkClassLabels, checkFeatures, type FeatureMatrix, permutation } from "./linear-probe.js";

export interface SvmOptions {
  loss: "squared_hinge" | "hinge";
  /** Candidate C values, tried in order; a tie in held-out accuracy goes to the earlier (smaller) one. */
  cGrid: number[];
  /** Share of the training split held out to choose C. */
  heldOut: number;
  /** Projected-gradient spread at which a class's solver stops (LIBLINEAR eps). */
  tolerance: number;
  maxPasses: number;
  seed: number;
  /**
   * Optional group id per training sample (UCF101's "g08" groups): the held-out part then takes whole groups, so
   * clips of one group never sit on both sides of the split that chooses C.
   */
  groups?: ArrayLike<number>;
}

export const defaultSvm: SvmOptions = {
  loss: "squared_hinge",
  cGrid: [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
  heldOut: 0.2,
  tolerance: 0.1,
  maxPasses: 1000,
  seed: 1,
};

export interface Standardiser {
  mean: Float32Array;
  /** Standard deviation per dimension (1 where a dimension is constant). */
  std: Float32Array;
}

/** Mean and (population) standard deviation per dimension over the given rows (all when omitted). */
export function fitStandardiser(f: FeatureMatrix, rows?: ArrayLike<number>): Standardiser {
  checkFeatures(f, "fitStandardiser");
  const d = f.dim;
  const count = rows ? rows.length : f.samples;
  const sum = new Float64Array(d);
  const squares = new Float64Array(d);
  for (let r = 0; r < count; r++) {
    const o = (rows ? rows[r] : r) * d;
    for (let j = 0; j < d; j++) {
      const v = f.data[o + j];
      sum[j] += v;
      squares[j] += v * v;
    }
  }
  const mean = new Float32Array(d);
  const std = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    const m = sum[j] / Math.max(1, count);
    const variance = Math.max(0, squares[j] / Math.max(1, count) - m * m);
    mean[j] = m;
    std[j] = variance > 1e-12 ? Math.sqrt(variance) : 1;
  }
  return { mean, std };
}

/** Standardised rows with the intercept feature 1 appended: [rows x (dim + 1)]. */
function augmented(f: FeatureMatrix, s: Standardiser, rows?: ArrayLike<number>): Float32Array {
  const d = f.dim;
  const count = rows ? rows.length : f.samples;
  const out = new Float32Array(count * (d + 1));
  for (let r = 0; r < count; r++) {
    const src = (rows ? rows[r] : r) * d;
    const dst = r * (d + 1);
    for (let j = 0; j < d; j++) out[dst + j] = (f.data[src + j] - s.mean[j]) / s.std[j];
    out[dst + d] = 1;
  }
  return out;
}

function dot64(w: Float64Array, x: Float32Array, xo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s0 += w[i] * x[xo + i];
    s1 += w[i + 1] * x[xo + i + 1];
  }
  if (i < n) s0 += w[i] * x[xo + i];
  return s0 + s1;
}

export interface BinarySvmResult {
  /** Weights over the augmented features (last: intercept). */
  w: Float64Array;
  passes: number;
}

/**
 * One binary L2-regularised SVM by dual coordinate descent with LIBLINEAR's shrinking: a sample whose alpha sits at
 * a bound and whose gradient points outward past last pass's extreme projected gradient leaves the active set; when
 * the active set converges, every sample comes back for a full check pass before stopping. `x` is [n x dim1]
 * (augmented), `y` is +1 / -1, `norms` holds each row's squared norm; `rngFor(pass)` shuffles each pass.
 */
export function trainBinarySvm(
  x: Float32Array,
  dim1: number,
  y: Int8Array,
  norms: Float64Array,
  c: number,
  o: Pick<SvmOptions, "loss" | "tolerance" | "maxPasses">,
  rngFor: (pass: number) => Random,
): BinarySvmResult {
  const n = y.length;
  const diag = o.loss === "squared_hinge" ? 0.5 / c : 0;
  const upper = o.loss === "squared_hinge" ? Number.POSITIVE_INFINITY : c;
  const alpha = new Float64Array(n);
  const w = new Float64Array(dim1);
  const index = Int32Array.from({ length: n }, (_, i) => i);
  let active = n;
  let pgMaxOld = Number.POSITIVE_INFINITY;
  let pgMinOld = Number.NEGATIVE_INFINITY;
  let pass = 0;
  while (pass < o.maxPasses) {
    let pgMax = Number.NEGATIVE_INFINITY;
    let pgMin = Number.POSITIVE_INFINITY;
    const rng = rngFor(pass);
    for (let t = 0; t < active; t++) {
      const j = t + rng.int(active - t);
      const swap = index[t];
      index[t] = index[j];
      index[j] = swap;
    }
    for (let t = 0; t < active; t++) {
      const i = index[t];
      const xo = i * dim1;
      const yi = y[i];
      const g = yi * dot64(w, x, xo, dim1) - 1 + diag * alpha[i];
      let pg = 0;
      if (alpha[i] === 0) {
        if (g > pgMaxOld) {
          active--;
          index[t] = index[active];
          index[active] = i;
          t--;
          continue;
        }
        pg = Math.min(g, 0);
      } else if (alpha[i] === upper) {
        if (g < pgMinOld) {
          active--;
          index[t] = index[active];
          index[active] = i;
          t--;
          continue;
        }
        pg = Math.max(g, 0);
      } else pg = g;
      if (pg > pgMax) pgMax = pg;
      if (pg < pgMin) pgMin = pg;
      if (Math.abs(pg) > 1e-12) {
        const old = alpha[i];
        const next = Math.min(Math.max(old - g / (norms[i] + diag), 0), upper);
        alpha[i] = next;
        const step = (next - old) * yi;
        for (let j = 0; j < dim1; j++) w[j] += step * x[xo + j];
      }
    }
    pass++;
    if (pgMax - pgMin <= o.tolerance) {
      if (active === n) break;
      // Converged on the active set: bring everyone back and check once more.
      active = n;
      pgMaxOld = Number.POSITIVE_INFINITY;
      pgMinOld = Number.NEGATIVE_INFINITY;
      continue;
    }
    pgMaxOld = pgMax <= 0 ? Number.POSITIVE_INFINITY : pgMax;
    pgMinOld = pgMin >= 0 ? Number.NEGATIVE_INFINITY : pgMin;
  }
  return { w, passes: pass };
}

export interface LinearSvmModel {
  dim: number;
  classes: number;
  c: number;
  standardiser: Standardiser;
  /** [classes x (dim + 1)] weights over standardised features plus intercept. */
  w: Float32Array;
  /** Passes each class's solver took (maxPasses: it did not converge). */
  passes: Int32Array;
}

/** One-vs-rest SVMs on the given training rows (all when omitted), standardised with those rows' statistics. */
export function fitOneVsRest(
  f: FeatureMatrix,
  labels: ArrayLike<number>,
  classes: number,
  c: number,
  options: Partial<SvmOptions> = {},
  rows?: ArrayLike<number>,
): LinearSvmModel {
  const o = { ...defaultSvm, ...options };
  checkFeatures(f, "fitOneVsRest");
  checkClassLabels(labels, f.samples, classes, "fitOneVsRest");
  const standardiser = fitStandardiser(f, rows);
  const x = augmented(f, standardiser, rows);
  const dim1 = f.dim + 1;
  const n = rows ? rows.length : f.samples;
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = i * dim1; j < (i + 1) * dim1; j++) s += x[j] * x[j];
    norms[i] = s;
  }
  const w = new Float32Array(classes * dim1);
  const passes = new Int32Array(classes);
  const y = new Int8Array(n);
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < n; i++) y[i] = labels[rows ? rows[i] : i] === k ? 1 : -1;
    const r = trainBinarySvm(x, dim1, y, norms, c, o, (pass) => randomFor(o.seed, pass, k, "svm/order"));
    w.set(r.w, k * dim1);
    passes[k] = r.passes;
  }
  return { dim: f.dim, classes, c, standardiser, w, passes };
}

/** Decision values [samples x classes] (w . standardised x + intercept). */
export function svmScores(model: LinearSvmModel, f: FeatureMatrix): Float32Array {
  checkFeatures(f, "svmScores");
  if (f.dim !== model.dim)
    throw new RangeError(`svmScores: features have ${f.dim} dims, the SVM ${model.dim}`);
  const x = augmented(f, model.standardiser);
  const dim1 = f.dim + 1;
  const out = new Float32Array(f.samples * model.classes);
  const w64 = Float64Array.from(model.w);
  for (let i = 0; i < f.samples; i++)
    for (let k = 0; k < model.classes; k++) {
      out[i * model.classes + k] = dot64(w64.subarray(k * dim1, (k + 1) * dim1), x, i * dim1, dim1);
    }
  return out;
}

/** Training rows split into (fit, held out), seeded; by whole groups when groups are given. */
export function heldOutSplit(
  samples: number,
  share: number,
  seed: number,
  groups?: ArrayLike<number>,
): { fit: Int32Array; heldOut: Int32Array } {
  if (!(share > 0 && share < 1)) throw new RangeError(`heldOutSplit: share must be in (0, 1), got ${share}`);
  const rng = randomFor(seed, -1, -1, "svm/held-out");
  let out: boolean[];
  if (groups) {
    const ids = [...new Set(Array.from(groups))].sort((a, b) => a - b);
    const perm = permutation(ids.length, rng);
    const chosen = new Set<number>();
    const count = Math.max(1, Math.round(share * ids.length));
    for (let i = 0; i < count; i++) chosen.add(ids[perm[i]]);
    out = Array.from({ length: samples }, (_, i) => chosen.has(groups[i]));
  } else {
    const perm = permutation(samples, rng);
    const count = Math.max(1, Math.round(share * samples));
    out = new Array(samples).fill(false);
    for (let i = 0; i < count; i++) out[perm[i]] = true;
  }
  const fit: number[] = [];
  const held: number[] = [];
  out.forEach((h, i) => {
    (h ? held : fit).push(i);
  });
  return { fit: Int32Array.from(fit), heldOut: Int32Array.from(held) };
}

export interface SvmSelection {
  model: LinearSvmModel;
  /** Held-out top-1 accuracy of every C tried. */
  validation: { c: number; accuracy: number }[];
}

/** Chooses C on a held-out part of the training split, then refits on the whole split with it. */
export function trainLinearSvm(
  f: FeatureMatrix,
  labels: ArrayLike<number>,
  classes: number,
  options: Partial<SvmOptions> = {},
): SvmSelection {
  const o = { ...defaultSvm, ...options };
  checkClassLabels(labels, f.samples, classes, "trainLinearSvm");
  if (o.cGrid.length === 0) throw new RangeError("trainLinearSvm: the C grid is empty");
  const validation: { c: number; accuracy: number }[] = [];
  let best = o.cGrid[0];
  if (o.cGrid.length > 1) {
    const split = heldOutSplit(f.samples, o.heldOut, o.seed, o.groups);
    const heldFeatures: FeatureMatrix = {
      data: new Float32Array(split.heldOut.length * f.dim),
      samples: split.heldOut.length,
      dim: f.dim,
    };
    split.heldOut.forEach((row, i) => {
      heldFeatures.data.set(f.data.subarray(row * f.dim, (row + 1) * f.dim), i * f.dim);
    });
    let bestAccuracy = -1;
    for (const c of o.cGrid) {
      const model = fitOneVsRest(f, labels, classes, c, o, split.fit);
      const scores = svmScores(model, heldFeatures);
      let hits = 0;
      split.heldOut.forEach((row, i) => {
        let arg = 0;
        for (let k = 1; k < classes; k++) if (scores[i * classes + k] > scores[i * classes + arg]) arg = k;
        if (arg === labels[row]) hits++;
      });
      const accuracy = hits / split.heldOut.length;
      validation.push({ c, accuracy });
      if (accuracy > bestAccuracy) {
        bestAccuracy = accuracy;
        best = c;
      }
    }
  }
  return { model: fitOneVsRest(f, labels, classes, best, o), validation };
}
