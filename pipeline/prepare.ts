/**
 * `vatt prepare`: decode a dataset once into Parquet shards that training reads many times (datasets/parquet.ts).
 *
 *   dataset listing -> keep this shard's spans -> decodeSpan (ffmpeg + sharp, `concurrency` at once, in order)
 *     -> one Arrow batch per row -> writeParquetFile (row groups of ~64 MiB, zstd) -> receipt -> manifest.json
 *
 * Which span goes to which shard is a pure function of its key (source, id, span) and N: hash(key) mod N. It does
 * not depend on the listing's order, on which files exist, or on other shards, so any number of processes or
 * machines can each write their own `--shard i` and together they write exactly the shards one process would.
 * Rows within a shard follow the listing order. Everything written is deterministic (same dataset, same settings,
 * same ffmpeg and sharp: the same bytes), which is what makes resuming after a kill safe: finished shards are
 * skipped, an unfinished one is written again from its start. Each shard's pass re-reads the dataset's index
 * (cheap next to decoding a shard's videos), so memory never depends on the dataset's size.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import type { RecordBatch } from "apache-arrow";
import { flow, fromIterable, mapConcurrent, toAsyncIterable } from "../core/flow.js";
import { stableHash } from "../core/order.js";
import { fmix32 } from "../core/random.js";
import type { ClipRef, ClipSource } from "../core/records.js";
import { SkipLog } from "../core/skips.js";
import { audioSet } from "../datasets/audioset.js";
import { howTo100M } from "../datasets/howto100m.js";
import { manifest } from "../datasets/manifest.js";
import {
  finishedReceipt,
  type PrepareSettings,
  type ShardReceipt,
  shardFile,
  writeManifestIfComplete,
  writeReceipt,
} from "../datasets/parquet-manifest.js";
import { SHARD_SCHEMA_VERSION, shardRecordBatch } from "../datasets/parquet-schema.js";
import { MediaError } from "../media/process.js";
import { loadVocabulary, type Vocabulary } from "../operators/tokenize.js";
import { DEFAULT_ROW_GROUP_BYTES, writeParquetFile } from "../sinks/parquet-writer.js";
import { decodeSpan, type SpanDecodeOptions, type SpanItem } from "./prepare-decode.js";

export type PrepareKind = "howto100m" | "audioset" | "manifest";
export const PREPARE_KINDS: readonly PrepareKind[] = ["howto100m", "audioset", "manifest"];

export interface PrepareOptions {
  /** Dataset folder (HowTo100M / AudioSet layout), or for "manifest" a manifest file or a folder holding one. */
  dataset: string;
  kind: PrepareKind;
  out: string;
  numShards: number;
  /** Write only this shard (0-based); default: every shard, one after another. */
  shard?: number;
  fps?: number;
  shortSide?: number;
  sampleRate?: number;
  jpegQuality?: number;
  rowGroupBytes?: number;
  /** Spans decoded at once (default 2). */
  concurrency?: number;
  /** Vocabulary file (`vatt vocab`): captions get their 16 token ids; without it token_ids is null. */
  vocab?: string;
  /**
   * Longest stretch of one HowTo100M video stored in one row, in seconds (default 120; 0: whole videos). Long videos
   * become several rows, so a row's memory stays bounded (a 5-minute video at 256p is ~75 MB of JPEG frames).
   */
  maxRowSeconds?: number;
  /** AudioSet segments CSV (default `<dataset>/balanced_train_segments.csv`). */
  segments?: string;
  /** Per-span ffmpeg time limit base (default 60 s, plus 1 s per second of span). */
  timeoutMs?: number;
  /** Where skips go (dataset listing and decode failures). */
  skips?: SkipLog;
  onRow?: (event: { shard: number; rows: number; frames: number }) => void;
  onShard?: (event: { shard: number; reused: boolean; receipt: ShardReceipt }) => void;
  signal?: AbortSignal;
}

export interface PrepareResult {
  out: string;
  /** Shards this call covered, written now or found finished. */
  shards: ShardReceipt[];
  written: number[];
  reused: number[];
  /** manifest.json, when every shard of the folder is finished. */
  manifest?: string;
  skipped: Record<string, number>;
}

/** The key that places a span in a shard: what it is, never where it came in the listing. */
export function spanKey(item: Pick<SpanItem, "source" | "id" | "start" | "end">): string {
  return `${item.source}\u0000${item.id}\u0000${item.start ?? ""}\u0000${item.end ?? ""}`;
}

/** The shard of a span: hash(key) mod N. */
export function shardOfSpan(
  item: Pick<SpanItem, "source" | "id" | "start" | "end">,
  numShards: number,
): number {
  return fmix32(stableHash(spanKey(item))) % numShards;
}

/** A manifest file: `dataset` itself, or manifest.{csv,jsonl,parquet} inside it. */
async function manifestPath(dataset: string): Promise<string> {
  const info = await stat(dataset).catch(() => undefined);
  if (!info) throw new Error(`--dataset ${dataset}: no such file or folder`);
  if (info.isFile()) return dataset;
  for (const name of ["manifest.csv", "manifest.jsonl", "manifest.parquet"]) {
    if ((await stat(join(dataset, name)).catch(() => undefined))?.isFile()) return join(dataset, name);
  }
  throw new Error(
    `--dataset ${dataset}: a folder without manifest.csv, manifest.jsonl or manifest.parquet; pass the manifest file`,
  );
}

/** The dataset's reader and the folder stored paths are relative to. */
async function datasetSource(
  opts: PrepareOptions,
  skips: SkipLog,
): Promise<{ source: ClipSource; root: string }> {
  if (opts.kind === "manifest") {
    const path = await manifestPath(opts.dataset);
    return { source: manifest({ path, skips }), root: dirname(resolve(path)) };
  }
  const info = await stat(opts.dataset).catch(() => undefined);
  if (!info?.isDirectory())
    throw new Error(`--dataset ${opts.dataset}: not a folder (a ${opts.kind} layout is one)`);
  const source =
    opts.kind === "howto100m"
      ? // Every caption of a video (nearCaptions: all), one ref per video: the row holds the whole video.
        howTo100M({
          root: opts.dataset,
          seed: 0,
          skips,
          clipsPerVideo: 1,
          nearCaptions: Number.POSITIVE_INFINITY,
        })
      : audioSet({ root: opts.dataset, seed: 0, skips, segments: opts.segments });
  return { source, root: resolve(opts.dataset) };
}

/** Path stored in the row: relative to the dataset folder when inside it, so shards do not depend on mounts. */
function storedPath(path: string, root: string): string {
  const rel = relative(root, resolve(path));
  return rel.startsWith("..") || isAbsolute(rel) ? path : rel;
}

/**
 * A dataset ref -> the spans to decode: the whole file for AudioSet, the row's window for manifests, and for
 * HowTo100M the whole video cut into stretches of `maxRowSeconds` (the last one runs to the end of the file). The
 * stretches follow the captions' extent, so no probe is needed to list them; a video that fits in one stretch is
 * stored whole, exactly as without the limit.
 */
function spansOfRef(ref: ClipRef, kind: PrepareKind, root: string, maxRowSeconds: number): SpanItem[] {
  const item = {
    source: ref.source,
    id: ref.id,
    path: ref.path,
    storedPath: storedPath(ref.path, root),
    captions: ref.captions,
    labels: ref.labels,
  };
  if (kind === "manifest") return [{ ...item, start: ref.start, end: ref.end }];
  const spoken = ref.captions.reduce((last, c) => Math.max(last, c.end), 0);
  const pieces = kind === "howto100m" && maxRowSeconds > 0 ? Math.ceil(spoken / maxRowSeconds) : 1;
  if (pieces <= 1) return [item];
  return Array.from({ length: pieces }, (_, k) => {
    const start = k * maxRowSeconds;
    const end = k < pieces - 1 ? start + maxRowSeconds : undefined;
    const captions = ref.captions.filter((c) => c.end > start && (end === undefined || c.start < end));
    return { ...item, start, ...(end !== undefined ? { end } : {}), captions };
  });
}

async function* spansOfShard(
  source: ClipSource,
  kind: PrepareKind,
  root: string,
  shard: number,
  count: number,
  maxRowSeconds: number,
) {
  for await (const ref of source.refs(0)) {
    for (const item of spansOfRef(ref, kind, root, maxRowSeconds)) {
      if (shardOfSpan(item, count) === shard) yield item;
    }
  }
}

async function vocabSettings(
  path: string | undefined,
): Promise<{ vocab?: Vocabulary; id: PrepareSettings["vocab"] }> {
  if (!path) return { id: null };
  const bytes = await readFile(path).catch((err: Error) => {
    throw new Error(`--vocab ${path}: cannot read it (${err.message}); build one with 'vatt vocab'`);
  });
  const vocab = await loadVocabulary(path);
  return { vocab, id: { sha256: createHash("sha256").update(bytes).digest("hex"), size: vocab.size } };
}

function checkOptions(o: PrepareOptions): void {
  if (!PREPARE_KINDS.includes(o.kind)) throw new Error(`--kind must be one of ${PREPARE_KINDS.join(", ")}`);
  if (!(Number.isInteger(o.numShards) && o.numShards >= 1)) {
    throw new RangeError(`--num-shards must be an integer >= 1, got ${o.numShards}`);
  }
  if (o.shard !== undefined && !(Number.isInteger(o.shard) && o.shard >= 0 && o.shard < o.numShards)) {
    throw new RangeError(
      `--shard must be an integer in [0, ${o.numShards - 1}] (--num-shards ${o.numShards}), got ${o.shard}`,
    );
  }
  if (o.maxRowSeconds !== undefined && !(o.maxRowSeconds >= 0)) {
    throw new RangeError(`--max-row-seconds must be >= 0 (0: whole videos), got ${o.maxRowSeconds}`);
  }
  if (o.jpegQuality !== undefined && !(o.jpegQuality >= 1 && o.jpegQuality <= 100)) {
    throw new RangeError(`--jpeg-quality must be in [1, 100], got ${o.jpegQuality}`);
  }
}

/** Records a decode failure as a skip; anything that is not a MediaError is a bug and ends the run. */
function recordSpanSkip(skips: SkipLog) {
  return (err: unknown, item: SpanItem) => {
    if (!(err instanceof MediaError)) throw err;
    skips.record(
      "prepare:decode",
      err.kind,
      `${item.source}:${item.id} (${item.path}): ${err.message}; the video was left out of its shard`,
      { item: item.path },
    );
  };
}

/** Writes one shard and its receipt. */
async function writeShard(
  index: number,
  items: AsyncIterable<SpanItem>,
  o: PrepareOptions,
  settings: PrepareSettings,
  decode: Partial<SpanDecodeOptions>,
  skips: SkipLog,
): Promise<ShardReceipt> {
  const shardSkips = new SkipLog(50, (e) => skips.record(e.where, e.reason, e.message, e));
  let rows = 0;
  let frames = 0;
  let seconds = 0;
  const decoded = toAsyncIterable(
    flow(
      fromIterable(items),
      mapConcurrent((item: SpanItem, signal) => decodeSpan(item, { ...decode, signal }), {
        concurrency: o.concurrency ?? 2,
        buffer: 0,
        onError: recordSpanSkip(shardSkips),
      }),
    ),
  );
  async function* batches(): AsyncGenerator<RecordBatch> {
    for await (const row of decoded) {
      rows += 1;
      frames += row.frames.length;
      seconds += row.spanEnd - row.spanStart;
      yield shardRecordBatch([row]);
      o.onRow?.({ shard: index, rows, frames });
    }
  }
  const file = shardFile(index, settings.numShards);
  const written = await writeParquetFile(join(o.out, file), batches(), {
    rowGroupBytes: settings.rowGroupBytes,
    metadata: { key: "vatt", value: JSON.stringify({ schemaVersion: SHARD_SCHEMA_VERSION, settings }) },
  });
  const receipt: ShardReceipt = {
    format: "vatt-shard",
    index,
    file,
    rows,
    bytes: written.bytes,
    sha256: written.sha256,
    frames,
    seconds: Math.round(seconds * 1000) / 1000,
    skipped: shardSkips.byReason(),
    settings,
  };
  await writeReceipt(o.out, receipt);
  return receipt;
}

/**
 * Prepares shard `opts.shard` (or every shard) of the dataset into `opts.out`, skipping shards already finished
 * with the same settings, and writes manifest.json once every shard of the folder is finished.
 */
export async function prepareShards(opts: PrepareOptions): Promise<PrepareResult> {
  checkOptions(opts);
  const skips = opts.skips ?? new SkipLog();
  const { vocab, id: vocabId } = await vocabSettings(opts.vocab);
  const settings: PrepareSettings = {
    schemaVersion: SHARD_SCHEMA_VERSION,
    kind: opts.kind,
    numShards: opts.numShards,
    fps: opts.fps ?? 10,
    shortSide: opts.shortSide ?? 256,
    sampleRate: opts.sampleRate ?? 48_000,
    jpegQuality: opts.jpegQuality ?? 90,
    audio: "int16",
    rowGroupBytes: opts.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES,
    maxRowSeconds: opts.kind === "howto100m" ? (opts.maxRowSeconds ?? 120) : 0,
    vocab: vocabId,
  };
  const decode: Partial<SpanDecodeOptions> = {
    fps: settings.fps,
    shortSide: settings.shortSide,
    sampleRate: settings.sampleRate,
    jpegQuality: settings.jpegQuality,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(vocab ? { vocab } : {}),
  };
  await mkdir(opts.out, { recursive: true });
  const indices =
    opts.shard !== undefined ? [opts.shard] : Array.from({ length: opts.numShards }, (_, i) => i);
  const result: PrepareResult = { out: opts.out, shards: [], written: [], reused: [], skipped: {} };
  let listingReported = false;
  for (const index of indices) {
    opts.signal?.throwIfAborted();
    const done = await finishedReceipt(opts.out, index, settings);
    if (done) {
      result.shards.push(done);
      result.reused.push(index);
      opts.onShard?.({ shard: index, reused: true, receipt: done });
      continue;
    }
    // The listing's own skips (missing files, bad rows) are the same on every pass: report them once.
    const listingSkips = listingReported ? new SkipLog(0) : skips;
    listingReported = true;
    const { source, root } = await datasetSource(opts, listingSkips);
    const items = spansOfShard(source, opts.kind, root, index, opts.numShards, settings.maxRowSeconds);
    const receipt = await writeShard(index, items, opts, settings, decode, skips);
    result.shards.push(receipt);
    result.written.push(index);
    opts.onShard?.({ shard: index, reused: false, receipt });
  }
  result.manifest = await writeManifestIfComplete(opts.out, settings);
  result.skipped = skips.byReason();
  return result;
}
