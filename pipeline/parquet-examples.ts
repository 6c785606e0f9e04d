/**
 * Training from `vatt prepare` shards: no ffmpeg, the same DecodedClip and Example records as the raw-video path.
 *
 * Per epoch e:
 *   this worker's shards (file k belongs to worker k mod W), in an order drawn from (seed, e)
 *   -> each shard's row groups in an order drawn from (seed, e, shard), one row group in memory at a time
 *      (shard reading: datasets/parquet.ts)
 *   -> each row (one video) gives `clipsPerRow` CUTS: a window placed like the raw readers place it (centred on a
 *      random caption when the row has captions, HowTo100M / MIL-NCE; uniformly in the span otherwise, AudioSet),
 *      its frames' JPEG bytes and its int16 audio copied out of the row group
 *   -> a bounded shuffle buffer of cuts (`shuffleBuffer`, ~0.5-1 MB each), drawn from (seed, e, worker)
 *   -> JPEG decode with sharp (`concurrency` clips at once) -> DecodedClip
 *   -> operators/augment.ts (crop, flip, colour: the raw path's own operators; on the threads of a
 *      core/worker-pool.ts pool) -> Example.
 *
 * Clip semantics match operators/decode.ts: frame i of a clip starting at stored frame k0 is stored frame
 * k0 + i * stride; a span shorter than the clip is LOOPED (picture and sound with the same period) and counted in
 * `paddedFrames`; audio starts at the clip's first frame time, `frames * stride / fps` seconds long.
 * Randomness: cut c of the r-th row this worker reads in epoch e has index (r * clipsPerRow + c) * W + worker, and
 * its window, crop, flip and colour all come from randomFor(seed, e, index, purpose).
 */
import { nearestCaptions, POSITIVES_PER_CLIP } from "../core/captions.js";
import { flow, fromIterable, mapConcurrent, mapEach, toAsyncIterable } from "../core/flow.js";
import { shuffleBuffered } from "../core/order.js";
import { type Random, randomFor } from "../core/random.js";
import type { Caption, ClipRef, DecodedClip, Example } from "../core/records.js";
import { SkipLog } from "../core/skips.js";
import { WorkerPool } from "../core/worker-pool.js";
import { epochRows, shardFiles } from "../datasets/parquet.js";
import type { PreparedRow } from "../datasets/parquet-schema.js";
import type { AugmentOptions } from "../operators/augment.js";
import { captionPositives } from "../operators/captions.js";
import { augmentCut, type ClipCut, decodeCut } from "../operators/parquet-cut.js";
import type { AugmentTask } from "../operators/parquet-worker.js";
import { TOKENS_PER_CAPTION, type Vocabulary } from "../operators/tokenize.js";

export { type ClipCut, decodeCut } from "../operators/parquet-cut.js";

export interface ParquetSourceOptions {
  /** Shard folder written by `vatt prepare` (read through its manifest.json). */
  dir: string;
  seed: number;
  /** Epochs to run (default 1). */
  epochs?: number;
  /** This worker of several: shard file k belongs to worker k mod count. */
  worker?: { index: number; count: number };
  /** Clips cut from each row per epoch (default 1). */
  clipsPerRow?: number;
  /** Frames per clip (default 32) and stride over the stored frames (default 1). */
  frames?: number;
  stride?: number;
  /** Where a clip goes: "caption" (default: centred on a random caption, uniform when there are none), "random". */
  window?: "caption" | "random";
  /** Cuts held for shuffling (default 64; 0 or 1 keeps the read order). */
  shuffleBuffer?: number;
  /** Captions carried per clip, nearest first (default 5 = MIL-NCE's K). */
  nearCaptions?: number;
  /** Clips JPEG-decoded at once (default 2). */
  concurrency?: number;
  /** Worker threads that JPEG-decode and augment in `parquetExamples` (default 2; 0: on the main thread). */
  threads?: number;
  /** Decoded clips that may wait for the consumer (default 2). */
  buffer?: number;
  skips?: SkipLog;
}

interface CutGeometry {
  /** The shard stores token ids (prepared with --vocab). */
  storedText: boolean;
  frames: number;
  stride: number;
  window: "caption" | "random";
  nearCaptions: number;
}

/** A window of `length` s centred on `centre`, kept inside [lo, hi] where it fits. */
function placeInSpan(centre: number, length: number, lo: number, hi: number): number {
  const start = Math.min(centre - length / 2, hi - length);
  return Math.max(lo, start);
}

/** Start time of a clip in a row's span (seconds in the file), drawn from `rng`. */
export function clipStart(
  row: Pick<PreparedRow, "spanStart" | "spanEnd" | "captions">,
  seconds: number,
  window: "caption" | "random",
  rng: Random,
): number {
  const { spanStart: lo, spanEnd: hi, captions } = row;
  if (window === "caption" && captions.length > 0) {
    const c = captions[rng.int(captions.length)];
    return placeInSpan((c.start + c.end) / 2, seconds, lo, hi);
  }
  return lo + rng.next() * Math.max(0, hi - lo - seconds);
}

/**
 * Which stored frames a clip of `frames` frames starting at stored frame `first` shows: first + i * stride,
 * looping the available ones when the row ends first. Returns the indices and how many were repeats.
 */
export function clipFrameIndices(
  first: number,
  frames: number,
  stride: number,
  stored: number,
): { indices: number[]; padded: number } {
  const start = Math.max(0, Math.min(first, stored - 1));
  const available = Math.max(1, Math.ceil((stored - start) / stride));
  const got = Math.min(frames, available);
  const indices = Array.from({ length: frames }, (_, i) => start + (i % got) * stride);
  return { indices, padded: frames - got };
}

/** The clip's audio: `samples` from `offset`, looped with `period` (the looped picture's) or zero-padded. */
export function clipAudio(source: Int16Array, offset: number, samples: number, period: number): Int16Array {
  const out = new Int16Array(samples);
  const n = Math.max(0, Math.min(period, source.length - offset));
  for (let j = 0; j < samples; j++) {
    const k = j % period;
    out[j] = k < n ? source[offset + k] : 0;
  }
  return out;
}

/** Cuts one clip from a row. `index`/`epoch` key its randomness. Copies what it keeps. */
export function cutClip(
  row: PreparedRow,
  epoch: number,
  index: number,
  seed: number,
  g: CutGeometry,
): ClipCut {
  const seconds = (g.frames * g.stride) / row.fps;
  const rng = randomFor(seed, epoch, index, "parquet:window");
  const wanted = clipStart(row, seconds, g.window, rng);
  const first = Math.max(0, Math.round((wanted - row.spanStart) * row.fps));
  const { indices, padded } = clipFrameIndices(first, g.frames, g.stride, row.frames.length);
  const start = row.spanStart + indices[0] / row.fps;
  const end = start + seconds;
  const samples = Math.floor((row.sampleRate * g.frames * g.stride) / row.fps + 1e-9);
  const got = g.frames - padded;
  const period = padded > 0 ? Math.round((got * g.stride * row.sampleRate) / row.fps) : samples;
  const offset = Math.round((indices[0] / row.fps) * row.sampleRate);
  const near = nearestCaptions(row.captions, start, end, g.nearCaptions);
  const ref: ClipRef = {
    source: row.source,
    id: row.id,
    path: row.path,
    start,
    end,
    index,
    epoch,
    captions: near,
    labels: row.labels,
    duration: row.duration,
  };
  return {
    ref,
    jpegs: copyFrames(row.frames, indices),
    width: row.width,
    height: row.height,
    audio: row.hasAudio ? clipAudio(row.audio, offset, samples, Math.max(1, period)) : undefined,
    sampleRate: row.sampleRate,
    paddedFrames: padded,
    ...(g.storedText ? { tokenIds: row.tokenIds ? storedIds(row.captions, row.tokenIds, near) : [] } : {}),
  };
}

/** Copies of the frames at `indices`; a looped frame is copied once and repeated (decoded once later). */
function copyFrames(frames: readonly Uint8Array[], indices: readonly number[]): Uint8Array[] {
  const copies = new Map<number, Uint8Array>();
  return indices.map((k) => {
    const known = copies.get(k);
    if (known) return known;
    const copy = frames[k].slice();
    copies.set(k, copy);
    return copy;
  });
}

/** The stored token ids of `chosen` (objects taken from `captions`). */
function storedIds(
  captions: readonly Caption[],
  ids: readonly Int32Array[],
  chosen: readonly Caption[],
): Int32Array[] {
  return chosen.map((c) => ids[captions.indexOf(c)].slice());
}

function checkOptions(o: ParquetSourceOptions): void {
  const w = o.worker ?? { index: 0, count: 1 };
  if (
    !(
      Number.isInteger(w.count) &&
      w.count >= 1 &&
      Number.isInteger(w.index) &&
      w.index >= 0 &&
      w.index < w.count
    )
  ) {
    throw new RangeError(
      `worker must be 'index of count' with 0 <= index < count, got ${w.index} of ${w.count}`,
    );
  }
  const positive = {
    clipsPerRow: o.clipsPerRow,
    frames: o.frames,
    stride: o.stride,
    concurrency: o.concurrency,
  };
  for (const [name, v] of Object.entries(positive)) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
    }
  }
}

/** Cuts of every epoch, before shuffling, each keyed by (epoch, index). */
async function* cutsOfEpoch(
  files: readonly string[],
  storedText: boolean,
  epoch: number,
  o: ParquetSourceOptions,
): AsyncGenerator<ClipCut> {
  const { index: worker, count: workers } = o.worker ?? { index: 0, count: 1 };
  const perRow = o.clipsPerRow ?? 1;
  const g: CutGeometry = {
    storedText,
    frames: o.frames ?? 32,
    stride: o.stride ?? 1,
    window: o.window ?? "caption",
    nearCaptions: o.nearCaptions ?? POSITIVES_PER_CLIP,
  };
  let row = 0;
  for await (const r of epochRows(files, o.seed, epoch, { index: worker, count: workers })) {
    for (let c = 0; c < perRow; c++)
      yield cutClip(r, epoch, (row * perRow + c) * workers + worker, o.seed, g);
    row++;
  }
}

/** Every epoch's cuts, shuffled with a bounded buffer. */
async function* shuffledCuts(o: ParquetSourceOptions): AsyncGenerator<ClipCut> {
  checkOptions(o);
  const { files, storedText } = await shardFiles(o.dir);
  const w = o.worker ?? { index: 0, count: 1 };
  if (files.length < w.count) {
    throw new RangeError(
      `${o.dir}: ${files.length} shards for ${w.count} workers: every worker needs a shard; prepare with ` +
        `--num-shards ${w.count} or more`,
    );
  }
  const buffer = o.shuffleBuffer ?? 64;
  for (let epoch = 0; epoch < (o.epochs ?? 1); epoch++) {
    const cuts = cutsOfEpoch(files, storedText, epoch, o);
    yield* buffer > 1
      ? shuffleBuffered(cuts, buffer, randomFor(o.seed, epoch, w.index, "parquet:shuffle"))
      : cuts;
  }
}

/** Records a cut that would not decode (a damaged JPEG) as a skip; the stream goes on. */
function recordCutSkip(skips: SkipLog) {
  return (err: unknown, cut: ClipCut) => {
    skips.record(
      "parquet:decode",
      "corrupt",
      `${cut.ref.source}:${cut.ref.id} (${cut.ref.path}): ${(err as Error).message}; the clip was skipped`,
      { item: `${cut.ref.path}: ${cut.ref.id}`, unit: "stored video", pass: cut.ref.epoch },
    );
  };
}

/** DecodedClips from the shards (the raw path's `decodeClip` output, without ffmpeg), pulled. */
export function parquetClips(o: ParquetSourceOptions): AsyncGenerator<DecodedClip, void, undefined> {
  const clips = mapEach(({ clip }: { clip: DecodedClip }) => clip);
  return toAsyncIterable(flow(fromIterable(shuffledCuts(o)), decodeStage(o), clips));
}

function decodeStage(o: ParquetSourceOptions) {
  return mapConcurrent((cut: ClipCut) => decodeCut(cut).then((clip) => ({ clip, cut })), {
    concurrency: o.concurrency ?? 2,
    buffer: o.buffer ?? 2,
    onError: recordCutSkip(o.skips ?? new SkipLog()),
  });
}

export interface ParquetExampleOptions extends ParquetSourceOptions {
  /** The raw path's augmentation options (operators/augment.ts); the seed is the source's. */
  augment?: Partial<AugmentOptions>;
  /** Tokenizes captions when the shard has no stored token ids (or to override them). */
  vocab?: Vocabulary;
}

const NO_TEXT = { textIds: new Int32Array(0), textMask: new Float32Array(0) };

/**
 * Word ids of a cut's captions as K x 16 ids with a K mask: tokenized with `vocab` when given, else the ids the
 * shard stores. A shard prepared without a vocabulary and no `vocab` give no text (K = 0), as the raw path does
 * without a tokenizer. Rows without captions (AudioSet) give K rows of <pad> with mask 0.
 */
export function cutText(
  cut: ClipCut,
  k: number,
  vocab?: Vocabulary,
): { textIds: Int32Array; textMask: Float32Array } {
  const { ref } = cut;
  if (vocab) return captionPositives(ref.captions, ref.start, ref.end, vocab, k);
  if (!cut.tokenIds) return NO_TEXT;
  const textIds = new Int32Array(k * TOKENS_PER_CAPTION);
  const textMask = new Float32Array(k);
  cut.tokenIds.slice(0, k).forEach((ids, row) => {
    textIds.set(ids.subarray(0, TOKENS_PER_CAPTION), row * TOKENS_PER_CAPTION);
    textMask[row] = 1;
  });
  return { textIds, textMask };
}

const augmentWorker = new URL("../operators/parquet-worker.js", import.meta.url);

/**
 * The process's pool of `size` augmentation threads (core/worker-pool.ts; operators/parquet-worker.ts), kept for
 * the life of the process: a thread costs tens of ms to start and its kernels need JIT warm-up, which a pool per
 * stream would pay on every epoch stream. Idle threads do not keep the process alive.
 */
function augmentPool(size: number): WorkerPool<AugmentTask, Example> {
  let pool = pools.get(size);
  if (!pool) {
    pool = new WorkerPool({
      url: augmentWorker,
      size,
      workerName: "augmentation thread",
      poolName: "augmentation pool",
    });
    pools.set(size, pool);
  }
  return pool;
}

const pools = new Map<number, WorkerPool<AugmentTask, Example>>();

/** Augments a cut on a thread; the cut's buffers are handed over (unusable here afterwards). */
function augmentOnThread(
  pool: WorkerPool<AugmentTask, Example>,
  cut: ClipCut,
  augment: Partial<AugmentOptions>,
) {
  const buffers = new Set([...cut.jpegs.map((j) => j.buffer), ...(cut.audio ? [cut.audio.buffer] : [])]);
  return pool.run({ cut, augment }, { transfer: [...buffers] as ArrayBuffer[] });
}

/**
 * Training Examples from the shards: cut, shuffle, JPEG decode, then the raw path's augmentation (in `threads`
 * worker threads, default 2). Pulled: at most `threads + buffer` clips are being made or waiting.
 */
export async function* parquetExamples(o: ParquetExampleOptions): AsyncGenerator<Example, void, undefined> {
  const k = o.nearCaptions ?? POSITIVES_PER_CLIP;
  const { text, ...plain } = o.augment ?? {};
  const augment = { ...plain, seed: o.seed };
  const textOf = (cut: ClipCut) => (text ? text(cut.ref) : cutText(cut, k, o.vocab));
  const threads = o.threads ?? 2;
  const skips = o.skips ?? new SkipLog();
  if (threads === 0) {
    const stage = mapConcurrent((cut: ClipCut) => augmentCut(cut, { ...augment, text: () => textOf(cut) }), {
      concurrency: o.concurrency ?? 2,
      buffer: o.buffer ?? 2,
      onError: recordCutSkip(skips),
    });
    yield* toAsyncIterable(flow(fromIterable(shuffledCuts(o)), stage));
    return;
  }
  const pool = augmentPool(threads);
  const stage = mapConcurrent(
    async (cut: ClipCut) => {
      const words = textOf(cut); // before the cut's buffers are transferred to the worker
      return { ...(await augmentOnThread(pool, cut, augment)), ...words };
    },
    { concurrency: threads, buffer: o.buffer ?? 2, onError: recordCutSkip(skips) },
  );
  yield* toAsyncIterable(flow(fromIterable(shuffledCuts(o)), stage));
}
