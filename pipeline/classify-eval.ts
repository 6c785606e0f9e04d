/**
 * Classifier evaluation of a fine-tuned model, by the paper's protocol: per test video 4 uniformly spaced temporal
 * windows x 3 spatial crops (audio: 4 windows); the LOGITS of the views are averaged, then softmax (sigmoid for a
 * multi-label head). Figures: top-1, top-5, mean per-class accuracy and the confusion matrix (PNG), or mAP, AUC and
 * d-prime; each beside its chance level in eval.json. Inference only: tf.tidy around a forward without a tape.
 */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ClipRef } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { inferenceLogits, type Modality } from "../model/classifier.js";
import type { VattModel } from "../model/vatt.js";
import {
  confusionMatrix,
  multiLabelReport,
  type ScoreMatrix,
  singleLabelReport,
  targetsFromLabelLists,
} from "../sinks/classification-metrics.js";
import { writeConfusionPng } from "../sinks/confusion-plot.js";
import { type ClipSettings, inPieces, testViews } from "./transfer-data.js";

/** The flat figures `--json` prints, and their chance levels under the same keys. */
export interface Figures {
  top1?: number;
  top5?: number;
  meanClassAccuracy?: number;
  mAP?: number;
  auc?: number;
  dprime?: number;
  "R@1"?: number;
  "R@5"?: number;
  "R@10"?: number;
  medianRank?: number;
}

export interface ClassifierEvalReport {
  figures: Figures;
  chance: Figures;
  videos: number;
  views: number;
  /** Test videos shorter than one window (looped). */
  looped: number;
  skipped: number;
  classes: number;
  confusion?: number[];
  seconds: number;
}

/** Mean of consecutive groups of `views` rows: [videos * views, C] -> [videos, C]. */
export function averageViews(scores: Float32Array, classes: number, views: number): Float32Array {
  const rows = scores.length / classes;
  if (!Number.isInteger(rows / views))
    throw new RangeError(`${rows} rows are not whole groups of ${views} views`);
  const out = new Float32Array((rows / views) * classes);
  for (let r = 0; r < rows; r++) {
    const o = Math.floor(r / views) * classes;
    for (let c = 0; c < classes; c++) out[o + c] += scores[r * classes + c] / views;
  }
  return out;
}

/** Row-wise softmax (single-label) or element-wise sigmoid (multi-label) of logits. */
export function probabilities(logits: Float32Array, classes: number, multiLabel: boolean): Float32Array {
  const out = new Float32Array(logits.length);
  if (multiLabel) {
    for (let i = 0; i < logits.length; i++) out[i] = 1 / (1 + Math.exp(-logits[i]));
    return out;
  }
  for (let r = 0; r < logits.length / classes; r++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[r * classes + c] = Math.exp(logits[r * classes + c] - max);
    for (let c = 0; c < classes; c++) out[r * classes + c] /= sum;
  }
  return out;
}

/** Figures and chance levels from per-video scores [N, C] and label lists. */
export function classificationFigures(
  scores: ScoreMatrix,
  labels: readonly (readonly number[])[],
  multiLabel: boolean,
): { figures: Figures; chance: Figures; confusion?: number[] } {
  if (multiLabel) {
    const r = multiLabelReport(scores, targetsFromLabelLists(labels, scores.classes));
    return {
      figures: { mAP: r.mAP.value, auc: r.auc.value, dprime: r.dPrime.value },
      chance: { mAP: r.mAP.chance, auc: r.auc.chance, dprime: r.dPrime.chance },
    };
  }
  const single = labels.map((l) => l[0]);
  const r = singleLabelReport(scores, single);
  return {
    figures: { top1: r.top1.value, top5: r.top5.value, meanClassAccuracy: r.meanClassAccuracy.value },
    chance: { top1: r.top1.chance, top5: r.top5.chance, meanClassAccuracy: r.meanClassAccuracy.chance },
    confusion: Array.from(confusionMatrix(scores, single)),
  };
}

export interface ClassifierEvalOptions {
  model: VattModel;
  modality: Modality;
  refs: ClipRef[];
  classes: string[];
  multiLabel: boolean;
  settings: ClipSettings;
  windows: number;
  crops: 1 | 3;
  /** Views per forward call. */
  batchSize: number;
  skips: SkipLog;
  signal?: AbortSignal;
  onVideo?: (done: number, total: number) => void;
}

/** Evaluates every test ref (a failed decode is a counted skip) and computes the figures. */
export async function evaluateClassifier(o: ClassifierEvalOptions): Promise<ClassifierEvalReport> {
  const started = performance.now();
  const skippedBefore = o.skips.count;
  const c = o.classes.length;
  const perVideo: Float32Array[] = [];
  const labels: number[][] = [];
  let views = 0;
  let looped = 0;
  for await (const v of testViews(
    o.refs,
    o.settings,
    o.windows,
    o.modality === "video" ? o.crops : 1,
    o.skips,
  )) {
    if (o.signal?.aborted) break;
    const logits = inPieces(v.batch, o.batchSize, (piece) => inferenceLogits(o.model, o.modality, piece));
    perVideo.push(averageViews(logits, c, v.views));
    labels.push(v.ref.labels);
    views = v.views;
    if (v.looped) looped++;
    o.onVideo?.(perVideo.length, o.refs.length);
  }
  if (perVideo.length === 0) {
    throw new Error(
      `no test video could be read (${o.skips.count - skippedBefore} skipped): see the skips above`,
    );
  }
  const logits = new Float32Array(perVideo.length * c);
  perVideo.forEach((row, i) => {
    logits.set(row, i * c);
  });
  const scores = { scores: probabilities(logits, c, o.multiLabel), samples: perVideo.length, classes: c };
  const { figures, chance, confusion } = classificationFigures(scores, labels, o.multiLabel);
  return {
    figures,
    chance,
    videos: perVideo.length,
    views,
    looped,
    skipped: o.skips.count - skippedBefore,
    classes: c,
    ...(confusion ? { confusion } : {}),
    seconds: (performance.now() - started) / 1000,
  };
}

/** eval.json (atomically) and, single-label, confusion.png in the run directory. Returns the files written. */
export async function writeClassifierEval(
  runDir: string,
  report: ClassifierEvalReport & Record<string, unknown>,
  classes: string[],
  title: string,
): Promise<string[]> {
  const file = join(runDir, "eval.json");
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`);
  await rename(tmp, file);
  const files = [file];
  if (report.confusion) {
    const png = join(runDir, "confusion.png");
    await writeConfusionPng(png, report.confusion, classes.length, { title, classNames: classes });
    files.push(png);
  }
  return files;
}

/** "top-1 0.812 (chance 0.125)" lines, in the order of the keys. */
export function describeFigures(figures: Figures, chance: Figures): string {
  return Object.entries(figures)
    .map(([k, v]) => {
      const ch = chance[k as keyof Figures];
      const fmt = (x: number) => (k === "medianRank" ? String(x) : x.toFixed(3));
      return `${k} ${fmt(v as number)}${ch !== undefined ? ` (chance ${fmt(ch)})` : ""}`;
    })
    .join(", ");
}
