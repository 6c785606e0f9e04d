/**
 * Kernels written as plain loops over Float32Arrays, for the fast path's fused ops (model/fast/index.ts): the
 * contrastive loss and training-mode BatchNorm. Their tensors are small ([B, D] embeddings), so composed from tfjs
 * ops they are mostly engine bookkeeping: ~120 kernels forward and ~200 backward for the two losses of a step, ~12
 * and ~25 for each BatchNorm. Each function here is the exact math of the composed form (model/losses.ts,
 * model/ops.ts `batchNorm`), accumulating in double precision.
 */
import type { OnnxGemm } from "./onnx-gemm.js";

/** op(A) @ op(B) into out (model/fast/onnx-gemm.ts `OnnxGemm.matmul`, rank-2 operands here). */
export type MatMul = OnnxGemm["matmul"];

/** A masked similarity's offset (model/losses.ts LARGE). */
const LARGE = 1e9;
/** The floor under a squared norm (model/losses.ts l2Normalize). */
const MIN_SQUARED_NORM = 1e-12;

/** Rows of x [rows, d] divided by their L2 norms; the norms are returned for the backward pass. */
function normalizeRows(
  x: Float32Array,
  rows: number,
  d: number,
): { unit: Float32Array; norms: Float64Array } {
  const unit = new Float32Array(rows * d);
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < d; c++) ss += x[r * d + c] * x[r * d + c];
    // Math.fround: the composed form takes the floor and the root in float32.
    const norm = Math.sqrt(Math.fround(Math.max(Math.fround(ss), MIN_SQUARED_NORM)));
    norms[r] = norm;
    for (let c = 0; c < d; c++) unit[r * d + c] = x[r * d + c] / norm;
  }
  return { unit, norms };
}

/** d/dx of x / ||x|| given d/d(unit): (g - u (u . g)) / ||x|| (the floor, where it binds, passes g / floor). */
function normalizeRowsGrad(
  x: Float32Array,
  unit: Float32Array,
  norms: Float64Array,
  g: Float32Array,
  rows: number,
  d: number,
  out: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    let dot = 0;
    for (let c = 0; c < d; c++) {
      ss += x[r * d + c] * x[r * d + c];
      dot += unit[r * d + c] * g[r * d + c];
    }
    // tf.maximum passes the gradient to its first input where it is >= the second (ties included).
    const through = Math.fround(ss) >= MIN_SQUARED_NORM ? 1 : 0;
    for (let c = 0; c < d; c++) out[r * d + c] = (g[r * d + c] - through * unit[r * d + c] * dot) / norms[r];
  }
}

/** Shapes of one contrastive loss: B videos, K captions (or 1 audio) each, D features. */
export interface ContrastiveShape {
  batch: number;
  captions: number;
  dim: number;
}

/** What the forward pass computes and the backward pass reuses. */
interface ContrastiveState {
  v: { unit: Float32Array; norms: Float64Array };
  t: { unit: Float32Array; norms: Float64Array };
  /** sim[i, j * K + l] = cos(v_i, t_{j,l}) / tau, [B, B * K]. */
  sim: Float32Array;
  /** What a masked caption's similarities lose: (1 - mask) * 1e9, [B * K]. */
  invalid: Float64Array;
  /** Per row i: the denominator's and the numerator's logsumexp, and the weight of its loss in the mean. */
  denominator: Float64Array;
  numerator: Float64Array;
  weight: Float64Array;
  loss: number;
}

function contrastiveState(
  video: Float32Array,
  text: Float32Array,
  mask: Float32Array,
  s: ContrastiveShape,
  temperature: number,
  matmul: MatMul,
): ContrastiveState {
  const { batch: b, captions: k, dim: d } = s;
  const n = b * k;
  const v = normalizeRows(video, b, d);
  const t = normalizeRows(text, n, d);
  const sim = new Float32Array(b * n);
  if (d > 0) matmul(v.unit, [b, d], t.unit, [n, d], false, true, sim, [b, n]);
  for (let i = 0; i < sim.length; i++) sim[i] /= temperature;
  const invalid = Float64Array.from(mask, (m) => Math.fround((1 - m) * LARGE));
  const denominator = new Float64Array(b);
  const numerator = new Float64Array(b);
  // Row i's denominator: v_i against every caption (j, l), and every video j against v_i's captions (i, l).
  const rowTerms = (i: number, visit: (value: number) => void): void => {
    for (let r = 0; r < n; r++) visit(sim[i * n + r] - invalid[r]);
    for (let j = 0; j < b; j++)
      for (let l = 0; l < k; l++) visit(sim[j * n + i * k + l] - invalid[i * k + l]);
  };
  const diagonalTerms = (i: number, visit: (value: number) => void): void => {
    for (let l = 0; l < k; l++) visit(sim[i * n + i * k + l] - invalid[i * k + l]);
  };
  const logSumExp = (terms: (visit: (value: number) => void) => void): number => {
    let max = Number.NEGATIVE_INFINITY;
    terms((x) => {
      if (x > max) max = x;
    });
    let sum = 0;
    terms((x) => {
      sum += Math.exp(x - max);
    });
    return max + Math.log(sum);
  };
  const valid = new Float64Array(b);
  let validCount = 0;
  for (let i = 0; i < b; i++) {
    denominator[i] = logSumExp((visit) => rowTerms(i, visit));
    numerator[i] = logSumExp((visit) => diagonalTerms(i, visit));
    let m = Number.NEGATIVE_INFINITY;
    for (let l = 0; l < k; l++) m = Math.max(m, mask[i * k + l]);
    valid[i] = m;
    validCount += m;
  }
  // The mean is over valid samples: each valid one weighs B / count; an invalid one (its loss ~1e9) weighs 0.
  const scale = validCount > 0 ? b / Math.max(validCount, 1) : 0;
  const weight = Float64Array.from(valid, (m) => (m > 0 ? m * scale : 0));
  let total = 0;
  for (let i = 0; i < b; i++) if (weight[i] !== 0) total += (denominator[i] - numerator[i]) * weight[i];
  return { v, t, sim, invalid, denominator, numerator, weight, loss: b > 0 ? total / b : Number.NaN };
}

/**
 * The loss of model/losses.ts `milNceLoss` (NCE is K = 1): video [B, D], text [B * K, D] (each video's K captions
 * contiguous), mask [B, K]; mean over samples of logsumexp(one symmetric denominator) - logsumexp(positives).
 */
export function contrastiveLoss(
  video: Float32Array,
  text: Float32Array,
  mask: Float32Array,
  shape: ContrastiveShape,
  temperature: number,
  matmul: MatMul,
): number {
  return contrastiveState(video, text, mask, shape, temperature, matmul).loss;
}

/** Gradients of `contrastiveLoss` times `dy` with respect to video and text, written into dVideo and dText. */
export function contrastiveLossGrad(
  video: Float32Array,
  text: Float32Array,
  mask: Float32Array,
  shape: ContrastiveShape,
  temperature: number,
  dy: number,
  matmul: MatMul,
  dVideo: Float32Array,
  dText: Float32Array,
): void {
  const st = contrastiveState(video, text, mask, shape, temperature, matmul);
  const { batch: b, captions: k, dim: d } = shape;
  const n = b * k;
  const invalid = st.invalid;
  // d loss / d sim, then / tau for the product's gradient.
  const dSim = new Float64Array(b * n);
  for (let i = 0; i < b; i++) {
    const g = (dy * st.weight[i]) / b;
    if (g === 0) continue;
    const den = st.denominator[i];
    for (let r = 0; r < n; r++) dSim[i * n + r] += g * Math.exp(st.sim[i * n + r] - invalid[r] - den);
    for (let j = 0; j < b; j++) {
      for (let l = 0; l < k; l++) {
        const at = j * n + i * k + l;
        dSim[at] += g * Math.exp(st.sim[at] - invalid[i * k + l] - den);
      }
    }
    for (let l = 0; l < k; l++) {
      const at = i * n + i * k + l;
      dSim[at] -= g * Math.exp(st.sim[at] - invalid[i * k + l] - st.numerator[i]);
    }
  }
  const dProduct = Float32Array.from(dSim, (x) => x / temperature);
  const dUnitV = new Float32Array(b * d);
  const dUnitT = new Float32Array(n * d);
  if (d > 0 && b > 0) {
    matmul(dProduct, [b, n], st.t.unit, [n, d], false, false, dUnitV, [b, d]);
    matmul(dProduct, [b, n], st.v.unit, [b, d], true, false, dUnitT, [n, d]);
  }
  normalizeRowsGrad(video, st.v.unit, st.v.norms, dUnitV, b, d, dVideo);
  normalizeRowsGrad(text, st.t.unit, st.t.norms, dUnitT, n, d, dText);
}

/** Mean and biased variance of column f of x [rows, c]. */
function columnStatistics(x: Float32Array, rows: number, c: number, f: number): { mu: number; v: number } {
  let sum = 0;
  for (let r = 0; r < rows; r++) sum += x[r * c + f];
  const mu = sum / rows;
  let squares = 0;
  for (let r = 0; r < rows; r++) squares += (x[r * c + f] - mu) ** 2;
  return { mu, v: squares / rows };
}

/**
 * Training-mode BatchNorm of x [B, C] (model/ops.ts `batchNorm`): y = (x - mean) / sqrt(var + eps) * gamma + beta
 * with the batch's mean and biased variance, written into y, mean and variance.
 */
export function batchNormTraining(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  rows: number,
  eps: number,
  y: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
): void {
  const c = gamma.length;
  for (let f = 0; f < c; f++) {
    const { mu, v } = columnStatistics(x, rows, c, f);
    mean[f] = mu;
    variance[f] = v;
    const inv = 1 / Math.sqrt(Math.fround(v + eps));
    for (let r = 0; r < rows; r++) y[r * c + f] = (x[r * c + f] - mu) * inv * gamma[f] + beta[f];
  }
}

/** Gradients of `batchNormTraining`'s y (given dy) with respect to x, gamma and beta. */
export function batchNormTrainingGrad(
  x: Float32Array,
  gamma: Float32Array,
  dy: Float32Array,
  rows: number,
  eps: number,
  dx: Float32Array,
  dGamma: Float32Array,
  dBeta: Float32Array,
): void {
  const c = gamma.length;
  const xhat = new Float64Array(rows);
  for (let f = 0; f < c; f++) {
    const { mu, v } = columnStatistics(x, rows, c, f);
    const inv = 1 / Math.sqrt(Math.fround(v + eps));
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let r = 0; r < rows; r++) {
      xhat[r] = (x[r * c + f] - mu) * inv;
      sumDy += dy[r * c + f];
      sumDyXhat += dy[r * c + f] * xhat[r];
    }
    dBeta[f] = sumDy;
    dGamma[f] = sumDyXhat;
    // dx = gamma / sigma * (dy - mean(dy) - xhat * mean(dy * xhat)): the batch statistics' own gradients included.
    const g = gamma[f] * inv;
    for (let r = 0; r < rows; r++) {
      dx[r * c + f] = g * (dy[r * c + f] - sumDy / rows - (xhat[r] * sumDyXhat) / rows);
    }
  }
}
