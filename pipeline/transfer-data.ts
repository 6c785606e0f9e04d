/**
 * What every downstream job (fine-tuning, linear evaluation) shares: the benchmark's train/test split as clip
 * sources with their class list, the backbone loaded from a pretraining checkpoint (or freshly initialised: "from
 * scratch"), the training stream of labelled batches with exact positions, and the evaluation views of a test video.
 *
 * Kinds and their layouts (datasets/classification.ts reads them):
 *   ucf101   DIR/classInd.txt, trainlist0k.txt, testlist0k.txt, videos DIR/<Class>/*.avi     split k = 1..3
 *   hmdb51   DIR/videos/<class>/*.avi, DIR/testTrainMulti_7030_splits/<class>_test_split<k>.txt  k = 1..3
 *   esc50    DIR/meta/esc50.csv, DIR/audio/*.wav                              test fold k = 1..5, train the rest
 *   audioset DIR/balanced_train_segments.csv (train), eval_segments.csv (test), class_labels_indices.csv: multi-label
 *   images   DIR/train/<class>/*.JPEG, DIR/val/<class>/*.JPEG (each picture repeated as a clip)
 *   folders  DIR/train/<class>/<file>, DIR/test/<class>/<file>
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { flow, fromIterable, mapConcurrent, mapEach, toAsyncIterable } from "../core/flow.js";
import { multiHot } from "../core/labels.js";
import { orderedRefs, type StreamPosition } from "../core/order.js";
import { randomFor } from "../core/random.js";
import type { Batch, ClipRef, ClipSource, Example } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { audioSet } from "../datasets/audioset.js";
import { classFolders, esc50, hmdb51, ucf101 } from "../datasets/classification.js";
import type { WindowOptions } from "../datasets/source.js";
import { probeCached } from "../media/probe-cache.js";
import { loadCheckpoint, readCheckpointInfo } from "../model/checkpoint.js";
import { backboneOnly, type Modality } from "../model/classifier.js";
import { type ModelConfig, presetConfig, withOverrides } from "../model/config.js";
import { decodeSafetensors } from "../model/safetensors.js";
import { createModel, type VattModel } from "../model/vatt.js";
import { decodeAudioClip } from "../operators/audio-clip.js";
import { stackExamples } from "../operators/batch.js";
import { defaultInceptionCrop } from "../operators/crop.js";
import { chooseWindowStart, type DecodeOptions } from "../operators/decode.js";
import { temporalWindows } from "../operators/eval-views.js";
import { resolveCheckpoint } from "../sinks/checkpoints.js";
import type { PretrainConfig } from "./config.js";
import { RunError } from "./pretrain.js";
import { evaluationViews, pretrainingExamples, recordDecodeSkip } from "./stream.js";

export const TRANSFER_KINDS = ["ucf101", "hmdb51", "esc50", "audioset", "images", "folders"] as const;
export type TransferKind = (typeof TRANSFER_KINDS)[number];

/** Splits each benchmark averages over (`--all-splits`). */
export const SPLITS: Record<TransferKind, number[]> = {
  ucf101: [1, 2, 3],
  hmdb51: [1, 2, 3],
  esc50: [1, 2, 3, 4, 5],
  audioset: [1],
  images: [1],
  folders: [1],
};

export interface TransferTask {
  kind: TransferKind;
  dataset: string;
  split: number;
  classes: string[];
  multiLabel: boolean;
  train: ClipSource;
  test: ClipSource;
}

async function mustExist(path: string, what: string): Promise<void> {
  if (!(await stat(path).catch(() => undefined))) {
    throw new RunError(`${what} '${path}' does not exist: check --dataset and --kind (and --split)`);
  }
}

/** AudioSet's class names from class_labels_indices.csv (index,mid,display_name). */
async function audioSetClassNames(path: string): Promise<string[]> {
  const lines = (await readFile(path, "utf8")).split(/\r?\n/).filter((l) => l.trim() !== "");
  return lines.slice(1).map((l) => l.split(",").slice(2).join(",").replace(/^"|"$/g, ""));
}

/** Drops (and counts) refs whose labels fall outside the class list, which would make no target vector. */
function labelsChecked(source: ClipSource, classes: number, skips: SkipLog): ClipSource {
  return {
    name: source.name,
    async *refs(epoch) {
      for await (const ref of source.refs(epoch)) {
        const bad = ref.labels.find((l) => !(Number.isInteger(l) && l >= 0 && l < classes));
        if (bad === undefined) yield ref;
        else
          skips.record(
            source.name,
            "label-outside-classes",
            `${ref.id}: label ${bad} is outside the ${classes} classes of the class list; skipped (fix the split file or the class list).`,
            { item: ref.path, pass: epoch },
          );
      }
    },
  };
}

/** The benchmark's split `split` as train and test sources; a missing file or folder is one RunError line. */
export async function transferTask(
  kind: TransferKind,
  dataset: string,
  split: number,
  window: WindowOptions,
  skips: SkipLog,
): Promise<TransferTask> {
  const splits = SPLITS[kind];
  if (!splits.includes(split))
    throw new RunError(`--split ${split} does not exist for ${kind}: use one of ${splits.join(", ")}`);
  await mustExist(dataset, "dataset folder");
  let train: ClipSource & { classes?: () => Promise<string[]> };
  let test: ClipSource;
  let classes: string[];
  let multiLabel = false;
  switch (kind) {
    case "ucf101": {
      const classIndex = join(dataset, "classInd.txt");
      const trainFile = join(dataset, `trainlist0${split}.txt`);
      const testFile = join(dataset, `testlist0${split}.txt`);
      for (const f of [classIndex, trainFile, testFile]) await mustExist(f, "UCF101 file");
      const common = { videos: dataset, classIndex, skips, ...window };
      const t = ucf101({ ...common, splitFile: trainFile });
      train = t;
      test = ucf101({ ...common, splitFile: testFile });
      classes = await t.classes().catch((err: Error) => {
        throw new RunError(err.message);
      });
      break;
    }
    case "hmdb51": {
      const splitsDir = join(dataset, "testTrainMulti_7030_splits");
      await mustExist(splitsDir, "HMDB51 split folder");
      const common = {
        videos: join(dataset, "videos"),
        splits: splitsDir,
        split: split as 1 | 2 | 3,
        skips,
        ...window,
      };
      const t = hmdb51({ ...common, subset: "train" });
      train = t;
      test = hmdb51({ ...common, subset: "test" });
      classes = await t.classes();
      break;
    }
    case "esc50": {
      await mustExist(join(dataset, "meta", "esc50.csv"), "ESC-50 file");
      const folds = [1, 2, 3, 4, 5].filter((f) => f !== split);
      const t = esc50({ root: dataset, folds, skips, ...window });
      train = t;
      test = esc50({ root: dataset, folds: [split], skips, ...window });
      classes = await t.classes();
      break;
    }
    case "audioset": {
      const labels = join(dataset, "class_labels_indices.csv");
      for (const f of [labels, join(dataset, "eval_segments.csv")]) await mustExist(f, "AudioSet file");
      const common = { root: dataset, classLabels: labels, seed: 0, skips, ...window };
      train = audioSet(common);
      test = audioSet({ ...common, segments: join(dataset, "eval_segments.csv") });
      classes = await audioSetClassNames(labels);
      multiLabel = true;
      break;
    }
    case "images":
    case "folders": {
      const testDir = kind === "images" ? "val" : "test";
      for (const d of ["train", testDir]) await mustExist(join(dataset, d), "class folder root");
      const extensions = kind === "images" ? ["jpeg", "jpg", "png"] : undefined;
      const t = classFolders({ root: join(dataset, "train"), extensions, skips, ...window });
      train = t;
      const c = await t.classes();
      const tested = classFolders({ root: join(dataset, testDir), extensions, skips, ...window });
      // Test folders are matched to the training classes by name, whatever their own order or gaps.
      const testClasses = await tested.classes();
      test = {
        name: tested.name,
        async *refs(epoch) {
          for await (const ref of tested.refs(epoch)) {
            const label = c.indexOf(testClasses[ref.labels[0]]);
            yield { ...ref, labels: [label] }; // -1 (a class unknown to training) is counted by labelsChecked
          }
        },
      };
      classes = c;
      break;
    }
  }
  if (classes.length < 2)
    throw new RunError(`${kind} at '${dataset}' has ${classes.length} class(es): need at least 2`);
  return {
    kind,
    dataset,
    split,
    classes,
    multiLabel,
    train: labelsChecked(train, classes.length, skips),
    test: labelsChecked(test, classes.length, skips),
  };
}

/** The modality a kind is read in unless --modality says otherwise. */
export function defaultModality(kind: TransferKind): Modality {
  return kind === "esc50" || kind === "audioset" ? "audio" : "video";
}

/** Refs of one epoch, in file order (evaluation, counting). */
export async function listRefs(source: ClipSource, max = 0): Promise<ClipRef[]> {
  const out: ClipRef[] = [];
  for await (const ref of source.refs(0)) {
    out.push(ref);
    if (max > 0 && out.length >= max) break;
  }
  return out;
}

/** Training refs per class; classes without any are named in one line each (counted as skips). */
export function reportEmptyClasses(task: TransferTask, refs: ClipRef[], skips: SkipLog): number[] {
  const counts = new Array<number>(task.classes.length).fill(0);
  for (const r of refs) for (const l of r.labels) counts[l] += 1;
  counts.forEach((n, c) => {
    if (n === 0)
      skips.record(
        task.kind,
        "empty-class",
        `class '${task.classes[c]}' of ${task.dataset} has no training ${task.kind === "esc50" ? "clips" : "videos"}: ` +
          "it can never be predicted (add files or drop the class)",
        { item: task.classes[c], unit: "class" },
      );
  });
  return counts;
}

// ---------------------------------------------------------------------------------------------------------------
// The backbone

export interface BackboneSource {
  /** A run directory, a checkpoint folder or .safetensors file; "none": the same model from random init. */
  checkpoint: string;
  /** With "none": the preset to build (default: tiny). With a checkpoint: it must be this preset. */
  preset?: string;
  modality: Modality;
  /** Input overrides (0 keeps the checkpoint's). */
  resolution?: number;
  frames?: number;
  seed: number;
}

export interface LoadedBackbone {
  model: VattModel;
  /** The pretraining run's config, when the checkpoint has one (decode settings). */
  runConfig?: PretrainConfig;
  file?: string;
  describe: string;
}

function geometryFor(c: ModelConfig, resolution = 0, frames = 0): ModelConfig {
  return withOverrides(c, {
    videoGeometry: {
      ...(resolution > 0 ? { height: resolution, width: resolution } : {}),
      ...(frames > 0 ? { frames } : {}),
    },
    dropTokenRate: 0,
  });
}

/**
 * The modality's backbone, from a checkpoint or freshly initialised. Problems are one RunError line: a missing
 * checkpoint, another preset's, one without the modality's backbone (e.g. a video fine-tuning run for audio).
 */
export async function loadBackbone(o: BackboneSource): Promise<LoadedBackbone> {
  if (o.checkpoint === "none") {
    const preset = presetConfig(o.preset ?? "tiny");
    if (!preset) throw new RunError(`unknown preset '${o.preset}': use tiny, BBS, MBS, LBS or MA-Medium`);
    const full = createModel(geometryFor(preset, o.resolution, o.frames), o.seed);
    return {
      model: backboneOnly(full, o.modality),
      describe: `${preset.preset} from random init (seed ${o.seed})`,
    };
  }
  let file: string;
  try {
    file = (await resolveCheckpoint(o.checkpoint)).file;
  } catch (err) {
    throw new RunError((err as Error).message);
  }
  const info = await readCheckpointInfo(file).catch((err: Error) => {
    throw new RunError(
      `checkpoint '${file}' has no readable JSON beside it (${err.message}): is it a vatt checkpoint?`,
    );
  });
  if (info.format !== "vatt-checkpoint" || !info.config) {
    throw new RunError(`'${file}' is not a vatt checkpoint (format '${String(info.format)}')`);
  }
  if (o.preset && info.config.preset.toLowerCase() !== o.preset.toLowerCase()) {
    throw new RunError(
      `checkpoint '${file}' is preset '${info.config.preset}', not '${o.preset}': fine-tune the preset it was trained ` +
        `as (drop --preset) or give a ${o.preset} checkpoint`,
    );
  }
  const { tensors } = decodeSafetensors(new Uint8Array(await readFile(file)));
  if (!tensors[`param/${o.modality}/patch/kernel`]) {
    throw new RunError(
      `checkpoint '${file}' has no ${o.modality} backbone (it holds ${[
        ...new Set(
          Object.keys(tensors)
            .filter((k) => k.startsWith("param/"))
            .map((k) => k.split("/")[1]),
        ),
      ].join(", ")}): ` +
        `give a pretraining checkpoint, or --modality ${o.modality === "audio" ? "video" : "audio"}`,
    );
  }
  const model = backboneOnly(
    createModel(geometryFor(info.config, o.resolution, o.frames), o.seed),
    o.modality,
  );
  try {
    await loadCheckpoint(file, model);
  } catch (err) {
    throw new RunError(
      `checkpoint '${file}' does not fit the ${info.config.preset} ${o.modality} backbone: ${(err as Error).message}`,
    );
  }
  const runConfig = info.extra.runConfig as PretrainConfig | undefined;
  const step = info.optimizer?.step;
  return {
    model,
    runConfig,
    file,
    describe: `${info.config.preset} from ${file}${step !== undefined ? ` (step ${step})` : ""}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

export interface ClipSettings {
  modality: Modality;
  /** Video decode settings (frames, fps, stride, shortSide, decoder, timeoutMs). */
  decode: Partial<DecodeOptions>;
  /** The model's input geometry. */
  height: number;
  width: number;
  /** Audio: samples per clip and their rate. */
  samples: number;
  sampleRate: number;
  concurrency: number;
  buffer: number;
}

/** Decode settings of a model at a frame rate: the audio rate makes its samples span the frames' time. */
export function clipSettings(
  model: ModelConfig,
  modality: Modality,
  d: {
    fps: number;
    stride: number;
    shortSide: number;
    decoder: string;
    timeoutMs: number;
    concurrency: number;
    buffer: number;
  },
): ClipSettings {
  const g = model.videoGeometry;
  const seconds = (g.frames * d.stride) / d.fps;
  const sampleRate = Math.round(model.audioGeometry.samples / seconds);
  return {
    modality,
    decode: {
      frames: g.frames,
      fps: d.fps,
      stride: d.stride,
      sampleRate,
      shortSide: Math.max(d.shortSide, g.height, g.width),
      decoder: d.decoder as DecodeOptions["decoder"],
      timeoutMs: d.timeoutMs,
    },
    height: g.height,
    width: g.width,
    samples: model.audioGeometry.samples,
    sampleRate,
    concurrency: d.concurrency,
    buffer: d.buffer,
  };
}

/** Seconds of one clip. */
export function clipLength(s: ClipSettings): number {
  return s.modality === "audio"
    ? s.samples / s.sampleRate
    : ((s.decode.frames ?? 32) * (s.decode.stride ?? 1)) / (s.decode.fps ?? 10);
}

/** A batch of audio examples (no picture: video is empty). */
export function audioBatch(
  examples: readonly { id: string; source: string; audio: Float32Array; labels: Float32Array }[],
): Batch {
  const n = examples.length;
  const samples = examples[0]?.audio.length ?? 0;
  const classes = examples[0]?.labels.length ?? 0;
  const audio = new Float32Array(n * samples);
  const labels = new Float32Array(n * classes);
  examples.forEach((e, i) => {
    audio.set(e.audio, i * samples);
    labels.set(e.labels, i * classes);
  });
  return {
    size: n,
    video: new Float32Array(0),
    videoShape: [n, 0, 0, 0, 3],
    audio,
    audioMask: new Float32Array(n).fill(1),
    textIds: new Int32Array(0),
    textMask: new Float32Array(0),
    labels,
    sources: examples.map((e) => e.source),
    ids: examples.map((e) => e.id),
  };
}

/** The whole file as the ref's window (evaluation spreads its windows over it); the duration probed if unknown. */
export async function wholeFile(ref: ClipRef): Promise<ClipRef> {
  const duration = ref.duration ?? (await probeCached(ref.path)).duration;
  return { ...ref, start: 0, end: duration, duration };
}

export interface TrainStreamOptions {
  source: ClipSource;
  classes: number;
  settings: ClipSettings;
  seed: number;
  batchSize: number;
  shuffleBuffer: number;
  minArea: number;
  flip: number;
  skips: SkipLog;
  resume?: StreamPosition;
}

export interface LabelledBatch {
  batch: Batch;
  position: StreamPosition;
}

/**
 * Training batches, epoch after epoch, each with the exact stream position after it (an exact --resume): video
 * clips at a seeded random place with an Inception crop and a flip (no colour: the reference's fine-tuning), audio
 * windows at a seeded random place; labels multi-hot [B, C].
 */
export async function* trainingBatches(
  o: TrainStreamOptions,
): AsyncGenerator<LabelledBatch, void, undefined> {
  const refs = orderedRefs(o.source, {
    seed: o.seed,
    epochs: Number.POSITIVE_INFINITY,
    shuffleBuffer: o.shuffleBuffer,
    resume: o.resume,
  });
  const s = o.settings;
  // A split whose every clip fails would otherwise be read pass after pass forever: after two whole passes
  // without one example (the first pass's length counted as it goes), the run stops and says why.
  let sinceExample = 0;
  let passLength = 0;
  const watched = async function* (): AsyncGenerator<ClipRef> {
    for await (const ref of refs) {
      if (ref.epoch === 0) passLength++;
      if (++sinceExample > 2 * passLength + s.concurrency + s.buffer && ref.epoch > 0) {
        const last = o.skips.lastEvents().at(-1)?.message ?? "no message";
        throw new RunError(
          `no training clip could be read in two passes over the split (${o.skips.count} skipped; the last: ${last}): ` +
            "fix the files or the dataset's --kind / --modality",
        );
      }
      yield ref;
    }
  };
  const examples: AsyncIterable<Example | AudioExample> =
    s.modality === "video"
      ? pretrainingExamples(watched(), {
          seed: o.seed,
          concurrency: s.concurrency,
          buffer: s.buffer,
          skips: o.skips,
          geometryIn: "arrays",
          decode: s.decode,
          augment: {
            crop: "inception",
            inception: { ...defaultInceptionCrop, area: [o.minArea, 1] },
            flipProbability: o.flip,
            colour: false,
            audioNoise: 0,
            numClasses: o.classes,
            outHeight: s.height,
            outWidth: s.width,
          },
        })
      : audioTrainingExamples(watched(), o);
  let pending: (Example | AudioExample)[] = [];
  for await (const e of examples) {
    sinceExample = 0;
    pending.push(e);
    if (pending.length < o.batchSize) continue;
    const last = pending[pending.length - 1];
    const batch = s.modality === "video" ? stackExamples(pending as Example[]) : audioBatch(pending);
    pending = [];
    yield { batch, position: { epoch: last.epoch, next: (last.order ?? 0) + 1 } };
  }
}

interface AudioExample {
  source: string;
  id: string;
  epoch: number;
  order?: number;
  audio: Float32Array;
  labels: Float32Array;
}

function audioTrainingExamples(
  refs: AsyncIterable<ClipRef>,
  o: TrainStreamOptions,
): AsyncGenerator<AudioExample> {
  const s = o.settings;
  const seconds = clipLength(s);
  const decode = mapConcurrent(
    async (ref: ClipRef, signal): Promise<AudioExample> => {
      const whole = await wholeFile(ref);
      const start = chooseWindowStart(
        whole,
        seconds,
        "random",
        randomFor(o.seed, ref.epoch, ref.index, "window"),
        whole.duration,
      );
      const audio = await decodeAudioClip(ref, start, {
        samples: s.samples,
        sampleRate: s.sampleRate,
        signal,
      });
      return {
        source: ref.source,
        id: ref.id,
        epoch: ref.epoch,
        order: ref.order,
        audio,
        labels: multiHot(ref.labels, o.classes),
      };
    },
    { concurrency: s.concurrency, buffer: s.buffer, onError: recordDecodeSkip(o.skips) },
  );
  return toAsyncIterable(flow(fromIterable(refs), decode));
}

/** One test video's views: windows x crops for video (window-major), windows for audio, as one Batch. */
export interface TestViews {
  ref: ClipRef;
  batch: Batch;
  views: number;
  /** The clip was shorter than one window and was looped. */
  looped: boolean;
}

/**
 * Evaluation views of each test ref over its whole file: `windows` uniformly spaced windows (a short file loops)
 * x `crops` spatial crops (1 centre, or 3 along the long side) for video; `windows` audio windows for audio.
 * Failed decodes are counted skips. Deterministic (no randomness).
 */
export function testViews(
  refs: ClipRef[],
  settings: ClipSettings,
  windows: number,
  crops: 1 | 3,
  skips: SkipLog,
): AsyncGenerator<TestViews, void, undefined> {
  const s = settings;
  const seconds = clipLength(s);
  if (s.modality === "video") {
    const whole = async function* () {
      for (const ref of refs) {
        try {
          yield await wholeFile(ref);
        } catch (err) {
          recordDecodeSkip(skips)(err, ref);
        }
      }
    };
    const views = evaluationViews(whole(), {
      windows,
      spatial: crops,
      concurrency: Math.max(1, Math.floor(s.concurrency / windows)),
      buffer: 2,
      skips,
      decode: s.decode,
      views: { outHeight: s.height, outWidth: s.width },
    });
    return toAsyncIterable(
      flow(
        fromIterable(views),
        mapEach(({ ref, views: v }) => ({
          ref,
          batch: stackExamples(v),
          views: v.length,
          looped: v.some((e) => e.padded),
        })),
      ),
    );
  }
  const decode = mapConcurrent(
    async (ref: ClipRef, signal): Promise<TestViews> => {
      const whole = await wholeFile(ref);
      const placed = temporalWindows(whole, windows, seconds, whole.duration);
      const clips = await Promise.all(
        placed.map((w) =>
          decodeAudioClip(ref, w.start, { samples: s.samples, sampleRate: s.sampleRate, signal }),
        ),
      );
      const batch = audioBatch(
        clips.map((audio) => ({ id: ref.id, source: ref.source, audio, labels: new Float32Array(0) })),
      );
      return { ref, batch, views: clips.length, looped: (whole.duration ?? 0) < seconds };
    },
    { concurrency: s.concurrency, buffer: 2, onError: recordDecodeSkip(skips) },
  );
  return toAsyncIterable(flow(fromIterable(refs), decode));
}

/** Batches of at most `size` views of a batch (inference memory stays bounded). */
export function sliceBatch(b: Batch, from: number, to: number): Batch {
  const n = to - from;
  const per = (x: { length: number }) => x.length / b.size;
  const cut = <T extends Float32Array | Int32Array>(x: T): T => x.subarray(from * per(x), to * per(x)) as T;
  return {
    size: n,
    video: cut(b.video),
    videoShape: [n, b.videoShape[1], b.videoShape[2], b.videoShape[3], 3],
    audio: cut(b.audio),
    audioMask: cut(b.audioMask),
    textIds: b.textIds.length ? cut(b.textIds) : b.textIds,
    textMask: b.textMask.length ? cut(b.textMask) : b.textMask,
    labels: b.labels.length ? cut(b.labels) : b.labels,
    sources: b.sources.slice(from, to),
    ids: b.ids.slice(from, to),
  };
}

/** Runs `f` over the batch in pieces of `size` rows and concatenates the [rows, width] outputs. */
export function inPieces(b: Batch, size: number, f: (piece: Batch) => Float32Array): Float32Array {
  const parts: Float32Array[] = [];
  for (let from = 0; from < b.size; from += size)
    parts.push(f(sliceBatch(b, from, Math.min(b.size, from + size))));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
