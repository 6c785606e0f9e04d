/**
 * The pretraining preset: from a validated config to the pieces a run needs — the model config that fits the
 * data, the vocabulary, the training stream of positioned batches (HowTo100M and AudioSet mixed, sharded into a
 * train and a held-out part), and the held-out evaluation items.
 */
import { access, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { nearestCaptions } from "../core/captions.js";
import { orderedRefs, type StreamPosition, stableHash } from "../core/order.js";
import type { Batch, ClipRef, ClipSource, Example } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { audioSet } from "../datasets/audioset.js";
import { howTo100M } from "../datasets/howto100m.js";
import { readShardManifest } from "../datasets/parquet-manifest.js";
import { type ModelConfig, presetConfig, withOverrides } from "../model/config.js";
import type { AugmentOptions } from "../operators/augment.js";
import { stackExamples } from "../operators/batch.js";
import { captionText } from "../operators/captions.js";
import { defaultInceptionCrop } from "../operators/crop.js";
import type { DecodeOptions } from "../operators/decode.js";
import { mixSources } from "../operators/mix.js";
import { loadVocabulary, SPECIAL_TOKENS, Vocabulary } from "../operators/tokenize.js";
import type { PretrainConfig } from "./config.js";
import { parquetExamples } from "./parquet-examples.js";
import { RETIRED_FILES, type RetirementWatch } from "./retirement.js";
import { pretrainingExamples } from "./stream.js";
import { captionVocabulary, writeVocabulary } from "./vocab.js";

/** Captions per clip for MIL-NCE (the paper's K). */
export const CAPTIONS_PER_CLIP = 5;

/** The model for a run: the preset, with the vocabulary's size and the run's DropToken rate. */
export function runModelConfig(config: PretrainConfig, vocabSize: number): ModelConfig {
  const preset = presetConfig(config.model.preset);
  if (!preset) throw new Error(`unknown model preset '${config.model.preset}'`);
  return withOverrides(preset, {
    dropTokenRate: config.model.dropTokenRate,
    textConfig: { vocabSize: Math.min(preset.textConfig.vocabSize, vocabSize) },
  });
}

/**
 * How clips are decoded for a model: its frame count at the run's fps, and the audio rate that makes its sample
 * count span the same time as the frames (tiny: 8192 samples over 0.8 s = 10,240 Hz; the paper: 153,600 over
 * 3.2 s = 48 kHz).
 */
export function decodeOptionsFor(model: ModelConfig, config: PretrainConfig): Partial<DecodeOptions> {
  const seconds = model.videoGeometry.frames / config.data.fps;
  return {
    frames: model.videoGeometry.frames,
    fps: config.data.fps,
    sampleRate: Math.round(model.audioGeometry.samples / seconds),
    shortSide: Math.max(config.data.decodeShortSide, model.videoGeometry.height, model.videoGeometry.width),
    timeoutMs: config.data.decodeTimeoutMs,
    decoder: config.data.decoder as DecodeOptions["decoder"],
    isolation: config.data.decoderIsolation as DecodeOptions["isolation"],
    workers: config.data.decodeWorkers,
  };
}

/** The training augmentation of a run (the reference's, unless the config says otherwise). */
export function augmentOptionsFor(config: PretrainConfig): Partial<AugmentOptions> {
  const a = config.augment;
  return {
    crop: a.crop as AugmentOptions["crop"],
    inception: { ...defaultInceptionCrop, area: [a.minArea, 1] },
    flipProbability: a.flip,
    ...(a.colour ? {} : { colour: false as const }),
    audioNoise: a.audioNoise,
  };
}

/** Whether a video belongs to the held-out split: a stable hash of its id, the same on every machine. */
export function isHeldOut(id: string, share: number): boolean {
  return stableHash(`heldout:${id}`) % 10_000 < share * 10_000;
}

function filtered(source: ClipSource, keep: (ref: ClipRef) => boolean): ClipSource {
  return {
    name: source.name,
    async *refs(epoch) {
      for await (const ref of source.refs(epoch)) if (keep(ref)) yield ref;
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The run's vocabulary: the configured file, or one built from the HowTo100M captions and saved in the run. */
export async function runVocabulary(config: PretrainConfig, skips: SkipLog): Promise<Vocabulary> {
  if (config.data.vocab) return loadVocabulary(config.data.vocab);
  if (config.data.parquet) {
    // AudioSet shards carry no captions: the text tower then sees only the special tokens, as with raw AudioSet.
    const { settings } = await readShardManifest(config.data.parquet);
    if (settings.kind === "audioset") return new Vocabulary(SPECIAL_TOKENS);
    throw new Error(
      "training from Parquet shards needs data.vocab (--vocab FILE): the vocabulary the captions are tokenized with, " +
        "e.g. the one given to 'vatt prepare --vocab' (make one with 'vatt vocab --captions caption.json')",
    );
  }
  const saved = join(config.runDir, "vocab.txt");
  if (await exists(saved)) return loadVocabulary(saved);
  if (!config.data.howto100m) return new Vocabulary(SPECIAL_TOKENS); // no text in the data: specials only
  const { vocab } = await captionVocabulary(join(config.data.howto100m, "caption.json"), 2 ** 16, skips);
  await mkdir(config.runDir, { recursive: true });
  await writeVocabulary(vocab, saved);
  return vocab;
}

/** The training part of the configured datasets, mixed by weight. */
export function trainingSource(config: PretrainConfig, model: ModelConfig, skips: SkipLog): ClipSource {
  const window = { frames: model.videoGeometry.frames, fps: config.data.fps };
  const inputs: { source: ClipSource; weight: number }[] = [];
  if (config.data.howto100m) {
    const source = howTo100M({
      root: config.data.howto100m,
      seed: config.seed,
      skips,
      clipsPerVideo: config.data.clipsPerVideo,
      ...window,
    });
    inputs.push({
      source: filtered(source, (r) => !isHeldOut(r.id, config.data.heldOutShare)),
      weight: config.data.howto100mWeight,
    });
  }
  if (config.data.audioset) {
    const source = audioSet({ root: config.data.audioset, seed: config.seed, skips, ...window });
    inputs.push({ source, weight: config.data.audiosetWeight });
  }
  if (inputs.length === 0)
    throw new Error("no raw-video dataset configured (data.howto100m or data.audioset)");
  return mixSources(inputs, { seed: config.seed });
}

/** A batch and the stream position after it. */
export interface PositionedBatch {
  batch: Batch;
  position: StreamPosition;
}

export interface BatchStreamOptions {
  config: PretrainConfig;
  model: ModelConfig;
  vocab: Vocabulary;
  skips: SkipLog;
  resume?: StreamPosition;
  /** Poll interval while waiting for new data in follow mode. */
  followPollMs?: number;
  signal?: AbortSignal;
  /**
   * Retires files that fail pass after pass (raw video only): hears the decodes, drops retired files' clips.
   * Without it every clip is asked for every pass.
   */
  retirement?: RetirementWatch;
  /** Progress notes (a pass whose every file is retired). */
  log?: (line: string) => void;
}

/** Files whose change means the dataset changed: the index files and the media folders. */
function watchedPaths(config: PretrainConfig): string[] {
  const paths: string[] = [];
  if (config.data.howto100m) {
    const root = config.data.howto100m;
    paths.push(join(root, "caption.json"), join(root, "HowTo100M_v1.csv"), join(root, "videos"));
  }
  if (config.data.audioset) {
    const root = config.data.audioset;
    paths.push(
      join(root, "balanced_train_segments.csv"),
      join(root, "unbalanced_train_segments.csv"),
      join(root, "clips"),
    );
  }
  return paths;
}

/** Size and modification time of each watched path: changes when rows or files are added. */
async function datasetStamp(paths: string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map((p) =>
      stat(p).then(
        (s) => `${s.size}:${s.mtimeMs}`,
        () => "-",
      ),
    ),
  );
  return parts.join("|");
}

/**
 * The run's refs, epoch after epoch. Every epoch re-reads the dataset's files. With `data.follow`, the stream also
 * (a) waits for data instead of ending when an epoch is empty, and (b) starts the next epoch as soon as the
 * dataset's files change, so videos and captions added while training are picked up within seconds rather than
 * after a whole pass. (A followed run's resume is exact only while the files stay unchanged.)
 */
async function* refsFollowing(
  source: ClipSource,
  o: BatchStreamOptions,
): AsyncGenerator<ClipRef, void, undefined> {
  const follow = o.config.data.follow;
  const pollMs = o.followPollMs ?? 2000;
  const watched = watchedPaths(o.config);
  const retirement = o.retirement;
  let resume = o.resume;
  let pass = resume?.epoch ?? -1;
  for (;;) {
    let stamp = follow ? await datasetStamp(watched) : "";
    let checked = Date.now();
    let last: ClipRef | undefined;
    let changed = false;
    // Clips of this pass read and served: a pass that reads clips but serves none (every file in it retired)
    // ends the data like an empty pass, instead of reading the listing again and again.
    let read = 0;
    let served = 0;
    for await (const ref of orderedRefs(source, {
      seed: o.config.seed,
      epochs: Number.POSITIVE_INFINITY,
      shuffleBuffer: o.config.data.shuffleBuffer,
      resume,
    })) {
      if (ref.epoch !== pass) {
        if (read > 0 && served === 0) break;
        pass = ref.epoch;
        read = 0;
        served = 0;
        await retirement?.beginPass(pass);
      }
      last = ref;
      read++;
      if (retirement?.drops(ref)) continue;
      served++;
      yield ref;
      if (follow && Date.now() - checked >= pollMs) {
        checked = Date.now();
        const now = await datasetStamp(watched);
        if (now !== stamp) {
          changed = true;
          stamp = now;
          break;
        }
      }
    }
    if (read > 0 && served === 0 && !changed) {
      o.log?.(
        `vatt: every file of pass ${pass} is retired (they failed pass after pass; see ${RETIRED_FILES} in the ` +
          `run directory)${follow ? ": waiting for the dataset to change" : ""}`,
      );
    }
    // orderedRefs ends only when a whole epoch is empty: without --follow that is the end of the data.
    if (!follow || o.signal?.aborted) return;
    resume = { epoch: last ? last.epoch + 1 : (resume?.epoch ?? 0), next: 0 };
    if (!changed) {
      // Nothing to read: wait until the dataset changes.
      while ((await datasetStamp(watched)) === stamp) {
        await new Promise((r) => setTimeout(r, pollMs));
        if (o.signal?.aborted) return;
      }
    }
  }
}

/**
 * The training stream: refs in the run's order (from `resume` on), decoded and augmented with bounded
 * concurrency, stacked into batches, each with the exact position after it. The stream reads ahead only as far
 * as `data.concurrency + data.buffer` clips.
 */
export async function* positionedBatches(
  o: BatchStreamOptions,
): AsyncGenerator<PositionedBatch, void, undefined> {
  const { config, model } = o;
  const examples = config.data.parquet ? parquetTrainingExamples(o) : rawTrainingExamples(o);
  let pending: Example[] = [];
  let consumed = o.resume?.next ?? 0; // Parquet positions count examples (one epoch index: the stream's own)
  for await (const example of examples) {
    const fitted = fitAudio(example, model);
    checkExample(fitted, model);
    pending.push(fitted);
    consumed += 1;
    if (pending.length < config.train.batchSize) continue;
    const last = pending[pending.length - 1];
    const batch = stackExamples(pending);
    pending = [];
    const position = config.data.parquet
      ? { epoch: 0, next: consumed }
      : { epoch: last.epoch, next: (last.order ?? 0) + 1 };
    yield { batch, position };
  }
}

function rawTrainingExamples(o: BatchStreamOptions): AsyncGenerator<Example, void, undefined> {
  const { config, model } = o;
  const source = trainingSource(config, model, o.skips);
  return pretrainingExamples(refsFollowing(source, o), {
    seed: config.seed,
    concurrency: config.data.concurrency,
    buffer: config.data.buffer,
    skips: o.skips,
    ...(o.retirement ? { outcomes: o.retirement } : {}),
    geometryIn: config.augment.cropIn as "ffmpeg" | "arrays",
    decode: decodeOptionsFor(model, config),
    augment: {
      ...augmentOptionsFor(config),
      outHeight: model.videoGeometry.height,
      outWidth: model.videoGeometry.width,
      text: captionText(o.vocab, CAPTIONS_PER_CLIP, model.textConfig.maxWords),
    },
  });
}

/**
 * Examples from `vatt prepare` shards: the same augmentation, no ffmpeg. Held-out videos are dropped here too.
 * Resuming skips the examples already consumed (they are cut and decoded again, then dropped: exact, not free).
 */
async function* parquetTrainingExamples(o: BatchStreamOptions): AsyncGenerator<Example, void, undefined> {
  const { config, model } = o;
  const stored = await readShardManifest(config.data.parquet!);
  const stride = Math.max(1, Math.round(stored.settings.fps / config.data.fps));
  const examples = parquetExamples({
    dir: config.data.parquet!,
    seed: config.seed,
    epochs: Number.POSITIVE_INFINITY,
    frames: model.videoGeometry.frames,
    stride,
    concurrency: config.data.concurrency,
    buffer: config.data.buffer,
    skips: o.skips,
    vocab: o.vocab,
    augment: {
      ...augmentOptionsFor(config),
      outHeight: model.videoGeometry.height,
      outWidth: model.videoGeometry.width,
    },
  });
  let toSkip = o.resume?.next ?? 0;
  for await (const example of examples) {
    if (isHeldOut(example.id, config.data.heldOutShare)) continue;
    if (toSkip > 0) {
      toSkip -= 1;
      continue;
    }
    yield example;
  }
}

/**
 * Audio stored at another rate (Parquet shards keep 48 kHz) resampled to the model's sample count: each output
 * sample is the mean of the input span it covers (a box filter against aliasing), or linear interpolation when
 * upsampling.
 */
export function resampleAudio(audio: Float32Array, samples: number): Float32Array {
  if (audio.length === samples) return audio;
  const out = new Float32Array(samples);
  const ratio = audio.length / samples;
  for (let i = 0; i < samples; i++) {
    const lo = i * ratio;
    const hi = lo + ratio;
    if (ratio <= 1) {
      const j = Math.min(audio.length - 1, Math.floor(lo));
      const f = lo - j;
      out[i] = audio[j] * (1 - f) + audio[Math.min(audio.length - 1, j + 1)] * f;
      continue;
    }
    let sum = 0;
    const first = Math.floor(lo);
    const last = Math.min(audio.length, Math.ceil(hi));
    for (let j = first; j < last; j++) sum += audio[j] * (Math.min(j + 1, hi) - Math.max(j, lo));
    out[i] = sum / ratio;
  }
  return out;
}

function fitAudio(e: Example, model: ModelConfig): Example {
  const samples = model.audioGeometry.samples;
  return e.audio.length === samples ? e : { ...e, audio: resampleAudio(e.audio, samples) };
}

function checkExample(e: Example, model: ModelConfig): void {
  const g = model.videoGeometry;
  const [t, h, w] = e.videoShape;
  if (t !== g.frames || h !== g.height || w !== g.width || e.audio.length !== model.audioGeometry.samples) {
    throw new Error(
      `example ${e.source}:${e.id} is ${e.videoShape.join("x")} video and ${e.audio.length} audio samples; the ` +
        `model expects ${g.frames}x${g.height}x${g.width}x3 and ${model.audioGeometry.samples} (a decode setting is off)`,
    );
  }
}

/** One held-out evaluation item: a stretch of a video, with the caption spoken there (when there is one). */
export interface EvalItem {
  ref: ClipRef;
  text?: string;
}

/**
 * Held-out items: HowTo100M videos of the held-out split (a stretch around one of their captions, the caption as
 * the text query) and AudioSet's eval segments (no text). At most `eval.maxVideos` of each.
 */
export async function evaluationItems(
  config: PretrainConfig,
  model: ModelConfig,
  skips: SkipLog,
): Promise<EvalItem[]> {
  const items: EvalItem[] = [];
  const window = model.videoGeometry.frames / config.data.fps;
  const max = config.eval.maxVideos;
  if (config.data.howto100m) {
    const source = howTo100M({
      root: config.data.howto100m,
      seed: config.seed + 1,
      skips,
      windowSeconds: window,
      clipsPerVideo: config.eval.clipsPerVideo,
    });
    let count = 0;
    for await (const ref of source.refs(0)) {
      if (!isHeldOut(ref.id, config.data.heldOutShare)) continue;
      const caption = nearestCaptions(ref.captions, ref.start, ref.end, 1)[0];
      if (!caption) continue;
      // The stretch the 4 windows cover: the caption's own span, at least one window long.
      const centre = (caption.start + caption.end) / 2;
      const half = Math.max(window, caption.end - caption.start) / 2;
      const start = Math.max(0, centre - half);
      items.push({ ref: { ...ref, start, end: start + 2 * half, captions: [caption] }, text: caption.text });
      if (++count >= max) break;
    }
  }
  if (config.data.audioset) {
    const evalCsv = join(config.data.audioset, "eval_segments.csv");
    if (await exists(evalCsv)) {
      const source = audioSet({
        root: config.data.audioset,
        segments: evalCsv,
        seed: config.seed,
        skips,
        windowSeconds: window,
      });
      let count = 0;
      for await (const ref of source.refs(0)) {
        items.push({ ref: { ...ref, start: 0, end: ref.duration ?? Math.max(ref.end, 10) } });
        if (++count >= max) break;
      }
    }
  }
  return items;
}
