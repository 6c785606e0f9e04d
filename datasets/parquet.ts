/**
 * Training from `vatt prepare` shards: no ffmpeg, the same DecodedClip and Example records as the raw-video path.
 *
 * Per epoch e:
 *   this worker's shards (file k belongs to worker k mod W), in an order drawn from (seed, e)
 *   -> each shard's row groups in an order drawn from (seed, e, shard), one row group in memory at a time
 *   -> each row (one video) gives `clipsPerRow` CUTS: a window placed like the raw readers place it (centred on a
 *      random caption when the row has captions, HowTo100M / MIL-NCE; uniformly in the span otherwise, AudioSet),
 *      its frames' JPEG bytes and its int16 audio copied out of the row group
 *   -> a bounded shuffle buffer of cuts (`shuffleBuffer`, ~0.5-1 MB each), drawn from (seed, e, worker)
 *   -> JPEG decode with sharp (`concurrency` clips at once) -> DecodedClip
 *   -> operators/augment.ts (crop, flip, colour: the raw path's own operators) -> Example.
 *
 * Clip semantics match operators/decode.ts: frame i of a clip starting at stored frame k0 is stored frame
 * k0 + i * stride; a span shorter than the clip is LOOPED (picture and sound with the same period) and counted in
 * `paddedFrames`; audio starts at the clip's first frame time, `frames * stride / fps` seconds long.
 * Randomness: cut c of the r-th row this worker reads in epoch e has index (r * clipsPerRow + c) * W + worker, and
 * its window, crop, flip and colour all come from randomFor(seed, e, index, purpose).
 */
import { openAsBlob } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { tableFromIPC } from "apache-arrow";
import type { AugmentOptions } from "../operators/augment.js";
import { captionPositives, nearestCaptions, POSITIVES_PER_CLIP } from "../operators/captions.js";
import { TOKENS_PER_CAPTION, type Vocabulary } from "../operators/tokenize.js";
import { flow, fromIterable, mapConcurrent, mapEach, toAsyncIterable } from "../pipeline/flow.js";
import { shuffleBuffered } from "../pipeline/order.js";
import { readShardManifest } from "../pipeline/prepare-manifest.js";
import { type Random, randomFor } from "../pipeline/random.js";
import type { Caption, ClipRef, DecodedClip, Example } from "../pipeline/records.js";
import { SkipLog } from "../pipeline/skips.js";
import { augmentCut, type ClipCut, decodeCut } from "./parquet-cut.js";
import { freeParquetFile, parquetWasm, readParquetGuarded } from "./parquet-guard.js";
import { type PreparedRow, rowsOfTable } from "./parquet-schema.js";

export { type ClipCut, decodeCut } from "./parquet-cut.js";

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

/** The Parquet shard files of a folder and whether they store token ids, from its manifest (version checked). */
export async function shardFiles(dir: string): Promise<{ files: string[]; storedText: boolean }> {
  const manifest = await readShardManifest(dir);
  return {
    files: manifest.shards.map((s) => join(dir, s.file)),
    storedText: manifest.settings.vocab !== null,
  };
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
function permutation(n: number, rng: Random): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** The rows of one shard, row group by row group in a seeded order; one row group in memory at a time. */
export async function* shardRows(path: string, rng?: Random): AsyncGenerator<PreparedRow> {
  const blob = await openAsBlob(path);
  const file = await readParquetGuarded(path, () => parquetWasm().ParquetFile.fromFile(blob));
  try {
    const groups = await readParquetGuarded(path, () => file.metadata().numRowGroups());
    const order = rng ? permutation(groups, rng) : Array.from({ length: groups }, (_, i) => i);
    for (const g of order) {
      const table = await readParquetGuarded(path, async () =>
        tableFromIPC((await file.read({ rowGroups: [g] })).intoIPCStream()),
      );
      yield* rowsOfTable(table, path);
    }
  } finally {
    freeParquetFile(file);
  }
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
  const mine = files.filter((_, k) => k % workers === worker);
  const perRow = o.clipsPerRow ?? 1;
  const g: CutGeometry = {
    storedText,
    frames: o.frames ?? 32,
    stride: o.stride ?? 1,
    window: o.window ?? "caption",
    nearCaptions: o.nearCaptions ?? POSITIVES_PER_CLIP,
  };
  let row = 0;
  for (const k of permutation(mine.length, randomFor(o.seed, epoch, worker, "parquet:shards"))) {
    const rng = randomFor(o.seed, epoch, k, "parquet:row-groups");
    for await (const r of shardRows(mine[k], rng)) {
      for (let c = 0; c < perRow; c++)
        yield cutClip(r, epoch, (row * perRow + c) * workers + worker, o.seed, g);
      row++;
    }
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

/**
 * A few worker threads running datasets/parquet-worker.ts; each task goes to the least busy one. One pool per
 * size is kept for the life of the process (see `augmentPool`): a worker costs tens of ms to start and its kernels
 * need JIT warm-up, which a pool per stream would pay on every epoch stream. An idle pool is unref'd, so it never
 * keeps the process alive; a pool with tasks in flight is ref'd.
 */
class AugmentPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<
    number,
    { resolve: (e: Example) => void; reject: (e: Error) => void; worker: number }
  >();
  private readonly load: number[];
  private nextId = 0;
  dead = false;

  constructor(size: number) {
    const url = new URL("./parquet-worker.js", import.meta.url);
    this.workers = Array.from({ length: size }, (_, w) => {
      const worker = new Worker(url);
      worker.unref();
      worker.on("message", (m: { id: number; example?: Example; error?: string }) => {
        const task = this.pending.get(m.id);
        if (!task) return;
        this.pending.delete(m.id);
        this.settled(task.worker);
        if (m.example) task.resolve(m.example);
        else task.reject(new Error(m.error ?? "the augmentation worker failed"));
      });
      worker.on("error", (err) => this.failAll(w, err));
      worker.on("exit", () => {
        this.dead = true;
        this.failAll(w, new Error("it exited"));
      });
      return worker;
    });
    this.load = this.workers.map(() => 0);
  }

  private settled(worker: number): void {
    this.load[worker]--;
    if (this.load[worker] === 0) this.workers[worker].unref();
  }

  private failAll(worker: number, err: Error): void {
    this.dead = true;
    for (const [id, task] of this.pending) {
      if (task.worker !== worker) continue;
      this.pending.delete(id);
      this.settled(worker);
      task.reject(new Error(`an augmentation worker thread died: ${err.message}`));
    }
  }

  run(cut: ClipCut, augment: Partial<AugmentOptions>): Promise<Example> {
    let w = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[w]) w = i;
    const id = this.nextId++;
    if (this.load[w]++ === 0) this.workers[w].ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: w });
      const buffers = new Set([...cut.jpegs.map((j) => j.buffer), ...(cut.audio ? [cut.audio.buffer] : [])]);
      this.workers[w].postMessage({ id, cut, augment }, [...buffers] as ArrayBuffer[]);
    });
  }
}

const pools = new Map<number, AugmentPool>();

/** The process's pool of `size` augmentation threads (a new one if the last died). */
function augmentPool(size: number): AugmentPool {
  let pool = pools.get(size);
  if (!pool || pool.dead) {
    pool = new AugmentPool(size);
    pools.set(size, pool);
  }
  return pool;
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
      return { ...(await pool.run(cut, augment)), ...words };
    },
    { concurrency: threads, buffer: o.buffer ?? 2, onError: recordCutSkip(skips) },
  );
  yield* toAsyncIterable(flow(fromIterable(shuffledCuts(o)), stage));
}
