/**
 * Classification figures of the paper's evaluations, each with its chance level so a report can put the two side by
 * side. Scores are row-major [N x C] (one row of class scores per sample: logits, probabilities or SVM margins; only
 * their order matters).
 *
 * Single-label (UCF101, HMDB51, ESC-50, Kinetics): top-k accuracy, mean per-class accuracy, confusion matrix.
 * Multi-label (AudioSet): per-class average precision, ROC-AUC and d-prime, each then averaged over classes (the
 * reference's `compute_map_auc_dprime`: sklearn's average_precision_score and roc_auc_score per class, d-prime =
 * sqrt(2) * PhiInv(AUC_c) per class, then plain means).
 *
 * Ties, decided once here:
 * - top-k: conservative. The label's rank is the number of OTHER classes whose score is >= the label's (a tie counts
 *   against the label); a hit when rank < k. A NaN score anywhere in the row counts against the label too. Mean
 *   per-class accuracy uses the same rule (top-1 per class). The confusion matrix needs one predicted class per
 *   sample: the argmax, a tie going to the lowest class index.
 * - average precision: sklearn's rule by default ("threshold"): samples with equal scores form one threshold, and
 *   every positive in the group gets the precision at the end of the group. "pessimistic" puts a group's positives
 *   after its negatives instead (never higher than sklearn's). Both equal the textbook mean of precision at each
 *   positive when no scores tie.
 * - ROC-AUC: Mann-Whitney U / (P * N) with a positive-negative tie counted 1/2 (identical to sklearn's trapezoid).
 * A class with no positive or no negative in the test set has no AP / AUC: it is skipped and counted.
 */

/** Row-major scores and the shape that goes with them. */
export interface ScoreMatrix {
  scores: Float32Array | Float64Array;
  samples: number;
  classes: number;
}

function checkShape(m: ScoreMatrix, where: string): void {
  if (!(Number.isInteger(m.classes) && m.classes >= 1 && Number.isInteger(m.samples) && m.samples >= 0))
    throw new RangeError(`${where}: bad shape ${m.samples} x ${m.classes}`);
  if (m.scores.length !== m.samples * m.classes)
    throw new RangeError(
      `${where}: ${m.scores.length} scores for ${m.samples} samples x ${m.classes} classes; pass one row per sample`,
    );
}

function checkLabels(labels: ArrayLike<number>, m: ScoreMatrix, where: string): void {
  if (labels.length !== m.samples)
    throw new RangeError(`${where}: ${labels.length} labels for ${m.samples} score rows`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < m.classes))
      throw new RangeError(`${where}: label ${y} of sample ${i} is not a class index in [0, ${m.classes})`);
  }
}

/** Rank of the label in its row under the conservative rule: other classes scoring >= it (or NaN) come first. */
export function labelRank(row: ArrayLike<number>, label: number): number {
  const own = row[label];
  if (Number.isNaN(own)) return row.length - 1;
  let rank = 0;
  for (let c = 0; c < row.length; c++) {
    if (c === label) continue;
    const s = row[c];
    if (s >= own || Number.isNaN(s)) rank++;
  }
  return rank;
}

/** Share of samples whose label is among the k highest scores (ties count against the label). */
export function topKAccuracy(m: ScoreMatrix, labels: ArrayLike<number>, k: number): number {
  checkShape(m, "topKAccuracy");
  checkLabels(labels, m, "topKAccuracy");
  if (!(Number.isInteger(k) && k >= 1))
    throw new RangeError(`topKAccuracy: k must be a whole number >= 1, got ${k}`);
  if (m.samples === 0) return Number.NaN;
  let hits = 0;
  for (let i = 0; i < m.samples; i++) {
    const row = m.scores.subarray(i * m.classes, (i + 1) * m.classes);
    if (labelRank(row, labels[i]) < k) hits++;
  }
  return hits / m.samples;
}

/** Index of the highest score of a row; ties go to the lowest index (a NaN is never the maximum). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < row.length; c++) if (row[c] > row[best] || Number.isNaN(row[best])) best = c;
  return best;
}

/** Predicted class (argmax) of every sample. */
export function predictions(m: ScoreMatrix): Int32Array {
  checkShape(m, "predictions");
  const out = new Int32Array(m.samples);
  for (let i = 0; i < m.samples; i++) out[i] = argmax(m.scores.subarray(i * m.classes, (i + 1) * m.classes));
  return out;
}

/** Confusion counts [C x C], row = true class, column = predicted class (argmax, ties to the lowest index). */
export function confusionMatrix(m: ScoreMatrix, labels: ArrayLike<number>): Int32Array {
  checkLabels(labels, m, "confusionMatrix");
  const predicted = predictions(m);
  const counts = new Int32Array(m.classes * m.classes);
  for (let i = 0; i < m.samples; i++) counts[labels[i] * m.classes + predicted[i]]++;
  return counts;
}

export interface MeanClassAccuracy {
  /** Mean over the classes present in the test set of their top-1 accuracy. */
  value: number;
  /** Top-1 accuracy per class; NaN for a class with no test sample. */
  perClass: Float64Array;
  /** Classes with no test sample (left out of the mean). */
  absentClasses: number;
}

/** Mean per-class top-1 accuracy, with top-1's tie rule (a tie for the top score is a miss). */
export function meanClassAccuracy(m: ScoreMatrix, labels: ArrayLike<number>): MeanClassAccuracy {
  checkShape(m, "meanClassAccuracy");
  checkLabels(labels, m, "meanClassAccuracy");
  const hits = new Float64Array(m.classes);
  const totals = new Float64Array(m.classes);
  for (let i = 0; i < m.samples; i++) {
    const y = labels[i];
    totals[y]++;
    if (labelRank(m.scores.subarray(i * m.classes, (i + 1) * m.classes), y) === 0) hits[y]++;
  }
  const perClass = new Float64Array(m.classes);
  let sum = 0;
  let present = 0;
  for (let c = 0; c < m.classes; c++) {
    perClass[c] = totals[c] > 0 ? hits[c] / totals[c] : Number.NaN;
    if (totals[c] === 0) continue;
    sum += perClass[c];
    present++;
  }
  return { value: present > 0 ? sum / present : Number.NaN, perClass, absentClasses: m.classes - present };
}

export type ApTies = "threshold" | "pessimistic";

/** Scores and 0/1 targets of one class, sorted by score descending (NaN scores last). */
function sortedColumn(
  scores: ArrayLike<number>,
  targets: ArrayLike<number>,
): { s: Float64Array; y: Uint8Array } {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(scores[i]) ? Number.NEGATIVE_INFINITY : scores[i]);
  order.sort((a, b) => key(b) - key(a) || a - b);
  const s = new Float64Array(n);
  const y = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    s[r] = key(order[r]);
    y[r] = targets[order[r]] > 0 ? 1 : 0;
  }
  return { s, y };
}

/**
 * Average precision of one class: the mean over its positives of the precision at the positive's rank, with tied
 * scores handled by `ties` (see the file comment). NaN when the class has no positive.
 */
export function averagePrecision(
  scores: ArrayLike<number>,
  targets: ArrayLike<number>,
  ties: ApTies = "threshold",
): number {
  if (scores.length !== targets.length)
    throw new RangeError(`averagePrecision: ${scores.length} scores for ${targets.length} targets`);
  const { s, y } = sortedColumn(scores, targets);
  let positives = 0;
  for (const v of y) positives += v;
  if (positives === 0) return Number.NaN;
  let sum = 0;
  let seen = 0; // samples before the current tie group
  let tp = 0; // positives before the current tie group
  for (let start = 0; start < s.length; ) {
    let end = start;
    let groupPos = 0;
    while (end < s.length && s[end] === s[start]) groupPos += y[end++];
    const groupSize = end - start;
    if (ties === "threshold") {
      sum += groupPos * ((tp + groupPos) / (seen + groupSize));
    } else {
      const groupNeg = groupSize - groupPos;
      for (let j = 1; j <= groupPos; j++) sum += (tp + j) / (seen + groupNeg + j);
    }
    tp += groupPos;
    seen += groupSize;
    start = end;
  }
  return sum / positives;
}

/** ROC-AUC of one class: P(score of a positive > score of a negative) + 1/2 P(equal). NaN without both kinds. */
export function rocAuc(scores: ArrayLike<number>, targets: ArrayLike<number>): number {
  if (scores.length !== targets.length)
    throw new RangeError(`rocAuc: ${scores.length} scores for ${targets.length} targets`);
  const { s, y } = sortedColumn(scores, targets);
  let positives = 0;
  for (const v of y) positives += v;
  const negatives = y.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  // Walk from the highest score: each negative beats nothing; each positive beats every negative below its group.
  let pairs = 0;
  let negativesAbove = 0;
  for (let start = 0; start < s.length; ) {
    let end = start;
    let groupPos = 0;
    while (end < s.length && s[end] === s[start]) groupPos += y[end++];
    const groupNeg = end - start - groupPos;
    const negativesBelow = negatives - negativesAbove - groupNeg;
    pairs += groupPos * (negativesBelow + 0.5 * groupNeg);
    negativesAbove += groupNeg;
    start = end;
  }
  return pairs / (positives * negatives);
}

// Wichura's AS241 (PPND16): rational approximations in three regions, relative accuracy about 1e-16.
const AS241_A = [
  3.3871328727963665, 133.14166789178438, 1971.5909503065513, 13731.69376550946, 45921.95393154987,
  67265.7709270087, 33430.57558358813, 2509.0809287301227,
];
const AS241_B = [
  1, 42.31333070160091, 687.1870074920579, 5394.196021424751, 21213.794301586597, 39307.89580009271,
  28729.085735721943, 5226.495278852854,
];
const AS241_C = [
  1.4234371107496835, 4.630337846156546, 5.769497221460691, 3.6478483247632045, 1.2704582524523684,
  0.2417807251774506, 0.022723844989269184, 0.0007745450142783414,
];
const AS241_D = [
  1, 2.053191626637759, 1.6763848301838038, 0.6897673349851, 0.14810397642748008, 0.015198666563616457,
  0.0005475938084995345, 1.0507500716444169e-9,
];
const AS241_E = [
  6.657904643501103, 5.463784911164114, 1.7848265399172913, 0.29656057182850487, 0.026532189526576124,
  0.0012426609473880784, 0.000027115555687434876, 2.0103343992922881e-7,
];
const AS241_F = [
  1, 0.599832206555888, 0.1369298809227358, 0.014875361290850615, 0.0007868691311456133,
  0.000018463183175100548, 1.421511758316446e-7, 2.0442631033899397e-15,
];

function horner(c: readonly number[], x: number): number {
  let v = c[c.length - 1];
  for (let i = c.length - 2; i >= 0; i--) v = v * x + c[i];
  return v;
}

/** Inverse of the standard normal CDF (AS241). +-Infinity at 1 and 0, NaN outside [0, 1]. */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) return Number.NaN;
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (q * horner(AS241_A, r)) / horner(AS241_B, r);
  }
  let r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  let x: number;
  if (r <= 5) {
    r -= 1.6;
    x = horner(AS241_C, r) / horner(AS241_D, r);
  } else {
    r -= 5;
    x = horner(AS241_E, r) / horner(AS241_F, r);
  }
  return q < 0 ? -x : x;
}

/**
 * AUC is clamped into [1e-6, 1 - 1e-6] for d-prime only: a perfectly separated class would otherwise give an
 * infinite d-prime and an infinite mean (which JSON cannot carry). The clamp caps one class's d-prime at ~6.72.
 */
const AUC_CLAMP = 1e-6;

/** d-prime of one class from its AUC: sqrt(2) * PhiInv(AUC). */
export function dPrime(auc: number): number {
  if (Number.isNaN(auc)) return Number.NaN;
  return Math.SQRT2 * normalQuantile(Math.min(1 - AUC_CLAMP, Math.max(AUC_CLAMP, auc)));
}

export interface MultiLabelMetrics {
  /** Mean over the counted classes of their average precision. */
  mAP: number;
  /** Mean over the counted classes of their ROC-AUC. */
  auc: number;
  /** Mean over the counted classes of sqrt(2) PhiInv(AUC_c): per class first, then averaged. */
  dPrime: number;
  /** Per-class figures (NaN for a skipped class). */
  ap: Float64Array;
  aucPerClass: Float64Array;
  dPrimePerClass: Float64Array;
  /** Classes that entered the means, and those skipped for having no positive or no negative in the test set. */
  countedClasses: number;
  skippedNoPositive: number;
  skippedNoNegative: number;
}

/**
 * mAP, AUC and d-prime over classes. `targets` is row-major [N x C] with 1 (or any value > 0) for a positive.
 * Only classes with at least one positive AND one negative enter all three means, so the three figures describe
 * the same classes (sklearn would fail on such a class; the reference's AudioSet eval set has none).
 */
export function multiLabelMetrics(
  m: ScoreMatrix,
  targets: ArrayLike<number>,
  ties: ApTies = "threshold",
): MultiLabelMetrics {
  checkShape(m, "multiLabelMetrics");
  if (targets.length !== m.scores.length)
    throw new RangeError(
      `multiLabelMetrics: ${targets.length} targets for ${m.scores.length} scores (N x C each)`,
    );
  const { samples: n, classes: c } = m;
  const ap = new Float64Array(c).fill(Number.NaN);
  const aucPerClass = new Float64Array(c).fill(Number.NaN);
  const dPrimePerClass = new Float64Array(c).fill(Number.NaN);
  const colScores = new Float64Array(n);
  const colTargets = new Uint8Array(n);
  let counted = 0;
  let noPositive = 0;
  let noNegative = 0;
  let sumAp = 0;
  let sumAuc = 0;
  let sumD = 0;
  for (let k = 0; k < c; k++) {
    let positives = 0;
    for (let i = 0; i < n; i++) {
      colScores[i] = m.scores[i * c + k];
      colTargets[i] = targets[i * c + k] > 0 ? 1 : 0;
      positives += colTargets[i];
    }
    if (positives === 0) {
      noPositive++;
      continue;
    }
    if (positives === n) {
      noNegative++;
      continue;
    }
    ap[k] = averagePrecision(colScores, colTargets, ties);
    aucPerClass[k] = rocAuc(colScores, colTargets);
    dPrimePerClass[k] = dPrime(aucPerClass[k]);
    sumAp += ap[k];
    sumAuc += aucPerClass[k];
    sumD += dPrimePerClass[k];
    counted++;
  }
  const mean = (s: number) => (counted > 0 ? s / counted : Number.NaN);
  return {
    mAP: mean(sumAp),
    auc: mean(sumAuc),
    dPrime: mean(sumD),
    ap,
    aucPerClass,
    dPrimePerClass,
    countedClasses: counted,
    skippedNoPositive: noPositive,
    skippedNoNegative: noNegative,
  };
}

/** Multi-label targets [N x C] from per-sample class lists. */
export function targetsFromLabelLists(lists: readonly (readonly number[])[], classes: number): Uint8Array {
  const out = new Uint8Array(lists.length * classes);
  lists.forEach((labels, i) => {
    for (const y of labels) {
      if (!(Number.isInteger(y) && y >= 0 && y < classes))
        throw new RangeError(
          `targetsFromLabelLists: label ${y} of sample ${i} is not a class index in [0, ${classes})`,
        );
      out[i * classes + y] = 1;
    }
  });
  return out;
}

/** A figure beside what guessing would score, for eval.json. */
export interface FigureWithChance {
  value: number;
  /** Expected value for a scorer that ranks classes uniformly at random. */
  chance: number;
  /** Single-label only: the best constant prediction (always the k most frequent test classes). */
  majority?: number;
}

export interface SingleLabelReport {
  samples: number;
  classes: number;
  top1: FigureWithChance;
  top5: FigureWithChance;
  meanClassAccuracy: FigureWithChance;
  absentClasses: number;
}

/** Share of test samples whose label is among the k most frequent test labels (the best constant top-k). */
export function majorityTopK(labels: ArrayLike<number>, classes: number, k: number): number {
  const counts = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const sorted = Array.from(counts).sort((a, b) => b - a);
  let covered = 0;
  for (let j = 0; j < Math.min(k, classes); j++) covered += sorted[j];
  return labels.length > 0 ? covered / labels.length : Number.NaN;
}

/**
 * Top-1, top-5 and mean class accuracy with their chance levels. For a uniformly random ranking P(label in top k)
 * = k / C whatever the label distribution, and mean class accuracy is 1 / C; `majority` is what always answering
 * the most frequent test classes would score (it shows how unbalanced the test set is).
 */
export function singleLabelReport(m: ScoreMatrix, labels: ArrayLike<number>): SingleLabelReport {
  const mca = meanClassAccuracy(m, labels);
  const c = m.classes;
  return {
    samples: m.samples,
    classes: c,
    top1: { value: topKAccuracy(m, labels, 1), chance: 1 / c, majority: majorityTopK(labels, c, 1) },
    top5: {
      value: topKAccuracy(m, labels, 5),
      chance: Math.min(5, c) / c,
      majority: majorityTopK(labels, c, 5),
    },
    meanClassAccuracy: { value: mca.value, chance: 1 / c },
    absentClasses: mca.absentClasses,
  };
}

export interface MultiLabelReport {
  samples: number;
  classes: number;
  mAP: FigureWithChance;
  auc: FigureWithChance;
  dPrime: FigureWithChance;
  countedClasses: number;
  skippedNoPositive: number;
  skippedNoNegative: number;
}

/**
 * mAP / AUC / d-prime with their chance levels: a random scorer's expected AP for a class is about its prevalence
 * (exactly, as the test set grows), so mAP's chance is the mean prevalence over the counted classes; AUC 0.5;
 * d-prime 0.
 */
export function multiLabelReport(
  m: ScoreMatrix,
  targets: ArrayLike<number>,
  ties: ApTies = "threshold",
): MultiLabelReport {
  const r = multiLabelMetrics(m, targets, ties);
  let prevalence = 0;
  for (let k = 0; k < m.classes; k++) {
    if (Number.isNaN(r.ap[k])) continue;
    let positives = 0;
    for (let i = 0; i < m.samples; i++) if (targets[i * m.classes + k] > 0) positives++;
    prevalence += positives / m.samples;
  }
  return {
    samples: m.samples,
    classes: m.classes,
    mAP: { value: r.mAP, chance: r.countedClasses > 0 ? prevalence / r.countedClasses : Number.NaN },
    auc: { value: r.auc, chance: 0.5 },
    dPrime: { value: r.dPrime, chance: 0 },
    countedClasses: r.countedClasses,
    skippedNoPositive: r.skippedNoPositive,
    skippedNoNegative: r.skippedNoNegative,
  };
}
