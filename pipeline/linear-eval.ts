/**
 * `vatt linear-eval`: a frozen backbone's pooled features, a linear classifier on them, by the paper's protocol
 * (reference code, "Downstream details"): training features from ONE centre clip per video (centre crop, no
 * augmentation; option: N augmented clips), test features from 4 uniformly spaced windows whose softmax outputs
 * are averaged; the low-rank classifier (U 128 components, 10 % trained per step, Adam 5e-4, batch 64) or a linear
 * SVM on standardised features with C chosen on a held-out part. `--all-splits` averages UCF101 / HMDB51 splits
 * 1-3 and ESC-50 folds 1-5.
 *
 * Features are cached as Parquet (`features/<key>.parquet`: id, labels, view, feature) keyed by everything that
 * shapes them (checkpoint file and its stamp, dataset, split, subset, views, geometry), so a second classifier, or
 * a rerun, reads them instead of decoding and running the backbone again.
 */
import { createHash } from "node:crypto";
import { openAsBlob } from "node:fs";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  tableFromIPC,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { ParquetFile } from "parquet-wasm";
import type { ClipRef, ClipSource } from "../core/records.js";
import { SkipLog } from "../core/skips.js";
import { type BackendChoice, selectBackend } from "../model/backend.js";
import { backboneWidth, type Modality, pooledFeatures } from "../model/classifier.js";
import {
  averageWindows,
  type FeatureMatrix,
  lowRankLogits,
  softmaxRows,
  trainLowRank,
} from "../model/linear-probe.js";
import { svmScores, trainLinearSvm } from "../model/linear-svm.js";
import type { VattModel } from "../model/vatt.js";
import { disposeModel } from "../model/vatt.js";
import { writeParquetFile } from "../sinks/parquet-writer.js";
import { classificationFigures, type Figures } from "./classify-eval.js";
import { RunError } from "./pretrain.js";
import {
  type ClipSettings,
  clipSettings,
  inPieces,
  listRefs,
  loadBackbone,
  reportEmptyClasses,
  SPLITS,
  type TransferKind,
  testViews,
  trainingBatches,
  transferTask,
} from "./transfer-data.js";

export type LinearClassifier = "lowrank" | "svm";

export interface LinearEvalOptions {
  checkpoint: string;
  preset?: string;
  dataset: string;
  kind: TransferKind;
  modality: Modality;
  /** One split, or all of the benchmark's (averaged). */
  splits: number[];
  classifier: LinearClassifier;
  /** Where eval.json goes (and features/, unless cacheDir). */
  outDir: string;
  cacheDir?: string;
  /** Training clips per video: 1 = the centre clip, no augmentation (reference); N > 1 augmented clips. */
  trainClips?: number;
  /** Test windows per video (reference: 4). */
  windows?: number;
  /** Low-rank classifier epochs (reference: 1000). */
  epochs?: number;
  seed?: number;
  backend?: BackendChoice;
  fps?: number;
  shortSide?: number;
  concurrency?: number;
  log?: (line: string) => void;
}

export interface SplitResult {
  split: number;
  figures: Figures;
  chance: Figures;
  train: number;
  test: number;
  featuresCached: { train: boolean; test: boolean };
  svm?: { c: number; validation: { c: number; accuracy: number }[] };
}

export interface LinearEvalResult {
  figures: Figures;
  chance: Figures;
  splits: SplitResult[];
  backbone: string;
  classifier: LinearClassifier;
  files: string[];
  skips: Record<string, number>;
}

/** Rows of pooled features with what they are. */
export interface FeatureRows {
  ids: string[];
  labels: number[][];
  views: number[];
  features: FeatureMatrix;
}

// ---------------------------------------------------------------------------------------------------------------
// The Parquet cache

function featureSchema(dim: number): Schema {
  return new Schema([
    new Field("id", new Utf8(), false),
    new Field("labels", new Utf8(), false),
    new Field("view", new Int32(), false),
    new Field("feature", new FixedSizeList(dim, new Field("item", new Float32(), false)), false),
  ]);
}

export async function writeFeatureCache(path: string, rows: FeatureRows): Promise<void> {
  const schema = featureSchema(rows.features.dim);
  const n = rows.ids.length;
  const type = schema.fields[3].type as FixedSizeList;
  const children: Data[] = [
    vectorFromArray(rows.ids, new Utf8()).data[0],
    vectorFromArray(
      rows.labels.map((l) => l.join(",")),
      new Utf8(),
    ).data[0],
    makeData({ type: new Int32(), length: n, data: Int32Array.from(rows.views) }),
    makeData({
      type,
      length: n,
      child: makeData({ type: new Float32(), length: n * rows.features.dim, data: rows.features.data }),
    }),
  ];
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
  await writeParquetFile(
    path,
    (async function* () {
      yield batch;
    })(),
  );
}

export async function readFeatureCache(path: string): Promise<FeatureRows> {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  try {
    const table = tableFromIPC((await file.read()).intoIPCStream());
    const n = table.numRows;
    const ids: string[] = [];
    const labels: number[][] = [];
    const views: number[] = [];
    const featureColumn = table.getChild("feature");
    const idCol = table.getChild("id");
    const labelCol = table.getChild("labels");
    const viewCol = table.getChild("view");
    if (!featureColumn || !idCol || !labelCol || !viewCol)
      throw new Error(
        `feature cache '${path}' lacks a column (id, labels, view, feature): delete it to extract again`,
      );
    const dim = (featureColumn.type as FixedSizeList).listSize;
    const data = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      ids.push(String(idCol.get(i)));
      const l = String(labelCol.get(i));
      labels.push(l === "" ? [] : l.split(",").map(Number));
      views.push(Number(viewCol.get(i)));
      data.set(featureColumn.get(i)?.toArray() as Float32Array, i * dim);
    }
    return { ids, labels, views, features: { data, samples: n, dim } };
  } finally {
    file.free();
  }
}

/** The cache key: a hash of everything that shapes the features. */
export async function featureKey(parts: Record<string, unknown>, checkpointFile?: string): Promise<string> {
  const stamp = checkpointFile
    ? await stat(checkpointFile).then((s) => `${s.size}:${s.mtimeMs}`)
    : "random-init";
  return createHash("sha256")
    .update(JSON.stringify({ ...parts, checkpointFile, stamp }))
    .digest("hex")
    .slice(0, 16);
}

// ---------------------------------------------------------------------------------------------------------------
// Extraction

function concatRows(parts: Float32Array[], dim: number): FeatureMatrix {
  const samples = parts.reduce((n, p) => n + p.length / dim, 0);
  const data = new Float32Array(samples * dim);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { data, samples, dim };
}

/** Test (or centre-clip training) features: `windows` uniformly spaced windows, centre crops, every row kept. */
async function viewFeatures(
  model: VattModel,
  modality: Modality,
  refs: ClipRef[],
  settings: ClipSettings,
  windows: number,
  skips: SkipLog,
): Promise<FeatureRows> {
  const dim = backboneWidth(model, modality);
  const rows: FeatureRows = {
    ids: [],
    labels: [],
    views: [],
    features: { data: new Float32Array(0), samples: 0, dim },
  };
  const parts: Float32Array[] = [];
  for await (const v of testViews(refs, settings, windows, 1, skips)) {
    parts.push(inPieces(v.batch, 16, (piece) => pooledFeatures(model, modality, piece)));
    for (let w = 0; w < v.views; w++) {
      rows.ids.push(v.ref.id);
      rows.labels.push(v.ref.labels);
      rows.views.push(w);
    }
  }
  rows.features = concatRows(parts, dim);
  return rows;
}

/** N augmented training clips per video (random place, Inception crop, flip), N passes over the split. */
async function augmentedFeatures(
  model: VattModel,
  modality: Modality,
  source: ClipSource,
  count: number,
  classes: number,
  settings: ClipSettings,
  seed: number,
  skips: SkipLog,
): Promise<FeatureRows> {
  const dim = backboneWidth(model, modality);
  const rows: FeatureRows = {
    ids: [],
    labels: [],
    views: [],
    features: { data: new Float32Array(0), samples: 0, dim },
  };
  const parts: Float32Array[] = [];
  const stream = trainingBatches({
    source,
    classes,
    settings,
    seed,
    batchSize: 1,
    shuffleBuffer: 0,
    minArea: 0.08,
    flip: 0.5,
    skips,
  });
  for await (const { batch } of stream) {
    if (rows.ids.length >= count) break;
    parts.push(pooledFeatures(model, modality, batch));
    rows.ids.push(batch.ids[0]);
    const labels: number[] = [];
    batch.labels.forEach((v, c) => {
      if (v > 0) labels.push(c);
    });
    rows.labels.push(labels);
    rows.views.push(Math.floor(rows.ids.length / Math.max(1, count)));
  }
  rows.features = concatRows(parts, dim);
  return rows;
}

async function cachedFeatures(
  path: string,
  extract: () => Promise<FeatureRows>,
): Promise<{ rows: FeatureRows; cached: boolean }> {
  if (await stat(path).catch(() => undefined)) return { rows: await readFeatureCache(path), cached: true };
  const rows = await extract();
  await writeFeatureCache(path, rows);
  return { rows, cached: false };
}

// ---------------------------------------------------------------------------------------------------------------
// Classifiers

/** Mean of the window scores per video, in the order the rows come (each video's windows contiguous). */
function perVideo(
  rows: FeatureRows,
  scores: Float32Array,
  classes: number,
  windows: number,
): { scores: Float32Array; labels: number[][] } {
  const labels = rows.labels.filter((_, i) => rows.views[i] === 0);
  return { scores: averageWindows(scores, classes, windows), labels };
}

function classify(
  classifier: LinearClassifier,
  train: FeatureRows,
  test: FeatureRows,
  classes: number,
  o: { epochs: number; seed: number },
): { scores: Float32Array; svm?: SplitResult["svm"] } {
  const trainLabels = train.labels.map((l) => l[0]);
  if (classifier === "lowrank") {
    const model = trainLowRank(train.features, trainLabels, classes, { epochs: o.epochs, seed: o.seed });
    return { scores: softmaxRows(lowRankLogits(model, test.features), classes) };
  }
  const { model, validation } = trainLinearSvm(train.features, trainLabels, classes, { seed: o.seed });
  return { scores: svmScores(model, test.features), svm: { c: model.c, validation } };
}

function meanFigures(all: Figures[]): Figures {
  const out: Record<string, number> = {};
  for (const key of Object.keys(all[0] ?? {})) {
    out[key] = all.reduce((s, f) => s + (f[key as keyof Figures] ?? 0), 0) / all.length;
  }
  return out as Figures;
}

export async function runLinearEval(o: LinearEvalOptions): Promise<LinearEvalResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const seed = o.seed ?? 0;
  await selectBackend(o.backend ?? "auto");
  for (const s of o.splits) {
    if (!SPLITS[o.kind].includes(s))
      throw new RunError(
        `--split ${s} does not exist for ${o.kind}: use one of ${SPLITS[o.kind].join(", ")}`,
      );
  }
  const backbone = await loadBackbone({
    checkpoint: o.checkpoint,
    preset: o.preset,
    modality: o.modality,
    seed,
  });
  const model = backbone.model;
  const skips = new SkipLog(50, (e) => log(`vatt: skipped: ${e.message}`));
  const cacheDir = o.cacheDir ?? join(o.outDir, "features");
  await mkdir(cacheDir, { recursive: true });
  const settings = clipSettings(model.config, o.modality, {
    fps: o.fps ?? backbone.runConfig?.data.fps ?? 10,
    stride: 1,
    shortSide: o.shortSide ?? backbone.runConfig?.data.decodeShortSide ?? 80,
    decoder: backbone.runConfig?.data.decoder ?? "auto",
    timeoutMs: 30_000,
    concurrency: o.concurrency ?? 8,
    buffer: 8,
  });
  const seconds = ((settings.decode.frames ?? 32) * 1) / (settings.decode.fps ?? 10);
  const windows = o.windows ?? 4;
  const trainClips = o.trainClips ?? 1;
  const results: SplitResult[] = [];
  try {
    for (const split of o.splits) {
      const task = await transferTask(o.kind, o.dataset, split, { windowSeconds: seconds }, skips);
      if (task.multiLabel)
        throw new RunError(
          `linear evaluation here is single-label (softmax / one-vs-rest): ${o.kind} is multi-label; fine-tune it instead`,
        );
      const classes = task.classes.length;
      const trainRefs = await listRefs(task.train);
      const testRefs = await listRefs(task.test);
      if (trainRefs.length === 0 || testRefs.length === 0)
        throw new RunError(
          `${o.kind} split ${split} at '${o.dataset}' has ${trainRefs.length} training and ${testRefs.length} test files that exist`,
        );
      reportEmptyClasses(task, trainRefs, skips);
      const base = {
        backbone: backbone.describe,
        dataset: o.dataset,
        kind: o.kind,
        split,
        modality: o.modality,
        geometry: model.config.videoGeometry,
        audio: model.config.audioGeometry,
        decode: settings.decode,
        seed,
      };
      const trainKey = await featureKey({ ...base, subset: "train", trainClips }, backbone.file);
      const testKey = await featureKey({ ...base, subset: "test", windows }, backbone.file);
      log(
        `vatt: ${o.kind} split ${split}: features of ${trainRefs.length} training and ${testRefs.length} test ${o.modality === "audio" ? "clips" : "videos"} (${backbone.describe}) ...`,
      );
      const train = await cachedFeatures(join(cacheDir, `${trainKey}.parquet`), () =>
        trainClips === 1
          ? viewFeatures(model, o.modality, trainRefs, settings, 1, skips)
          : augmentedFeatures(
              model,
              o.modality,
              task.train,
              trainClips * trainRefs.length,
              classes,
              settings,
              seed,
              skips,
            ),
      );
      const test = await cachedFeatures(join(cacheDir, `${testKey}.parquet`), () =>
        viewFeatures(model, o.modality, testRefs, settings, windows, skips),
      );
      const { scores, svm } = classify(o.classifier, train.rows, test.rows, classes, {
        epochs: o.epochs ?? 1000,
        seed,
      });
      const video = perVideo(test.rows, scores, classes, windows);
      const f = classificationFigures(
        { scores: video.scores, samples: video.labels.length, classes },
        video.labels,
        false,
      );
      results.push({
        split,
        figures: f.figures,
        chance: f.chance,
        train: train.rows.ids.length,
        test: video.labels.length,
        featuresCached: { train: train.cached, test: test.cached },
        ...(svm ? { svm } : {}),
      });
    }
  } finally {
    disposeModel(model);
  }
  const figures = meanFigures(results.map((r) => r.figures));
  const chance = meanFigures(results.map((r) => r.chance));
  await mkdir(o.outDir, { recursive: true });
  const file = join(o.outDir, "eval.json");
  const report = {
    kind: o.kind,
    modality: o.modality,
    classifier: o.classifier,
    backbone: backbone.describe,
    figures,
    chance,
    splits: results,
    skips: skips.byReason(),
  };
  await writeFile(`${file}.tmp-${process.pid}`, `${JSON.stringify(report, null, 2)}\n`);
  await rename(`${file}.tmp-${process.pid}`, file);
  return {
    figures,
    chance,
    splits: results,
    backbone: backbone.describe,
    classifier: o.classifier,
    files: [file],
    skips: skips.byReason(),
  };
}
