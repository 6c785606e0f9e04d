/**
 * Mixup within a batch, as the reference's `batched_mixup` (vatt/data/processing.py) does it for audio fine-tuning:
 * one seeded permutation pairs every sample i with partner p(i) (a sample may draw itself, as tf.random.shuffle
 * allows), each sample draws its own lambda_i ~ Beta(alpha, beta) (paper: Beta(5, 5)), and
 *
 *   input_i <- lambda_i * input_i + (1 - lambda_i) * input_p(i)
 *   label_i <- lambda_i * label_i + (1 - lambda_i) * label_p(i)      (when labels are mixed)
 *
 * computed from the ORIGINAL batch (not in place over already mixed rows). Beta draws come from two Gamma draws
 * (Marsaglia and Tsang's method); every draw from the one seeded Random passed in.
 */
import type { Random } from "../core/random.js";
import type { Batch } from "../core/records.js";

export interface MixupOptions {
  alpha: number;
  beta: number;
  /** Mix the labels with the same lambdas (reference fine-tuning: yes). */
  mixLabels: boolean;
}

export const paperMixup: MixupOptions = { alpha: 5, beta: 5, mixLabels: true };

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1) * U^(1 / shape). */
export function sampleGamma(shape: number, rng: Random): number {
  if (!(shape > 0 && Number.isFinite(shape)))
    throw new RangeError(`sampleGamma: shape must be > 0, got ${shape}`);
  if (shape < 1) {
    let u = rng.next();
    while (u === 0) u = rng.next();
    return sampleGamma(shape + 1, rng) * u ** (1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = rng.normal();
    const t = 1 + c * x;
    if (t <= 0) continue;
    const v = t * t * t;
    const u = rng.next();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(a: number, b: number, rng: Random): number {
  const x = sampleGamma(a, rng);
  const y = sampleGamma(b, rng);
  return x / (x + y);
}

/** Rows of a batch: `size` samples, each a contiguous run of inputs and of labels. */
export interface MixupRows {
  size: number;
  inputs: Float32Array;
  labels: Float32Array;
}

export interface MixupResult extends MixupRows {
  /** lambda of each sample (its own share). */
  lambda: Float64Array;
  /** The partner each sample was mixed with. */
  partner: Int32Array;
}

/** Mixes the rows with a seeded permutation and per-sample Beta lambdas; returns new arrays. */
export function mixup(rows: MixupRows, rng: Random, options: Partial<MixupOptions> = {}): MixupResult {
  const o = { ...paperMixup, ...options };
  const { size } = rows;
  if (!(Number.isInteger(size) && size >= 1))
    throw new RangeError(`mixup: batch size must be >= 1, got ${size}`);
  const inputWidth = rows.inputs.length / size;
  const labelWidth = rows.labels.length / size;
  if (!Number.isInteger(inputWidth) || !Number.isInteger(labelWidth))
    throw new RangeError(
      `mixup: ${rows.inputs.length} inputs and ${rows.labels.length} labels do not split into ${size} samples`,
    );
  const partner = Int32Array.from({ length: size }, (_, i) => i);
  for (let i = size - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = partner[i];
    partner[i] = partner[j];
    partner[j] = t;
  }
  const lambda = Float64Array.from({ length: size }, () => sampleBeta(o.alpha, o.beta, rng));
  const inputs = new Float32Array(rows.inputs.length);
  const labels = o.mixLabels ? new Float32Array(rows.labels.length) : Float32Array.from(rows.labels);
  for (let i = 0; i < size; i++) {
    const l = lambda[i];
    const own = i * inputWidth;
    const other = partner[i] * inputWidth;
    for (let e = 0; e < inputWidth; e++)
      inputs[own + e] = l * rows.inputs[own + e] + (1 - l) * rows.inputs[other + e];
    if (!o.mixLabels) continue;
    const ownLabel = i * labelWidth;
    const otherLabel = partner[i] * labelWidth;
    for (let e = 0; e < labelWidth; e++)
      labels[ownLabel + e] = l * rows.labels[ownLabel + e] + (1 - l) * rows.labels[otherLabel + e];
  }
  return { size, inputs, labels, lambda, partner };
}

/**
 * Mixup of one modality of a pipeline Batch and its labels (audio fine-tuning mixes the waveforms). Returns a new
 * Batch; the other fields are shared with the input.
 */
export function mixupBatch(
  batch: Batch,
  field: "audio" | "video",
  rng: Random,
  options: Partial<MixupOptions> = {},
): Batch {
  const mixed = mixup({ size: batch.size, inputs: batch[field], labels: batch.labels }, rng, options);
  return { ...batch, [field]: mixed.inputs, labels: mixed.labels };
}
