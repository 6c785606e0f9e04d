/**
 * The row layout of `vatt prepare` shards, shared by the writer (sinks/parquet-shard.ts) and the training reader
 * (datasets/parquet.ts). Ordinary Arrow types only, so DuckDB, pyarrow and Spark read the shards as they are.
 *
 * Unit of a row: ONE MEDIA SPAN, decoded once at a fixed frame rate. For HowTo100M and AudioSet the span is the
 * whole file (a video with all its captions; a 10 s AudioSet segment); for a manifest it is the row's
 * [start, end]. Clips are cut at train time from the stored frames, so a long HowTo100M video (many clips per
 * epoch, each at a fresh random place) is decoded once instead of once per clip, and the shard stays independent
 * of the clip length.
 *
 * Columns (schema version 1):
 *   id, source, path          utf8       dataset id ("<video id>", "<YTID>_<start>"), dataset name, media file
 *   duration                  float64    seconds, the whole media file (ffprobe)
 *   span_start, span_end      float64    the decoded span, seconds in the file
 *   source_fps                float64    the file's average frame rate
 *   source_width, _height     int32      display size (after rotation) before scaling
 *   fps                       float64    stored frame rate: frame k shows time span_start + k / fps
 *   width, height, num_frames int32      stored frame size (short side scaled) and count
 *   frames                    list<binary>  JPEG (baseline, 4:2:0), one per frame
 *   sample_rate               int32      48000
 *   has_audio                 bool       false: the file had no audio track (audio is empty)
 *   audio                     list<int16>   mono PCM, x / 32767 in [-1, 1]; sample j at span_start + j / rate.
 *                                        int16 halves the size of float32; its 96 dB of range is far more than
 *                                        compressed web audio holds.
 *   captions                  list<struct<start float64, end float64, text utf8, token_ids list<int32>>>
 *                                        in time order, seconds in the file; token_ids (16 ids, <pad> = 0) are
 *                                        null when the shard was prepared without a vocabulary
 *   labels                    list<int32>   class indices (AudioSet, manifests)
 */
import {
  Binary,
  Bool,
  type Data,
  Field,
  Float64,
  Int16,
  Int32,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  type Table,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import type { Caption } from "../core/records.js";

/** Bumped whenever a column is added, removed or changes meaning; readers refuse versions they do not know. */
export const SHARD_SCHEMA_VERSION = 1;

/** One prepared span, as the writer takes it and the reader gives it back. */
export interface PreparedRow {
  id: string;
  source: string;
  path: string;
  duration: number;
  spanStart: number;
  spanEnd: number;
  sourceFps: number;
  sourceWidth: number;
  sourceHeight: number;
  fps: number;
  width: number;
  height: number;
  /** JPEG bytes, one per frame. */
  frames: Uint8Array[];
  sampleRate: number;
  hasAudio: boolean;
  /** Mono int16 PCM. */
  audio: Int16Array;
  /** Time order, seconds in the file. */
  captions: Caption[];
  /** Per caption: 16 token ids, or undefined when prepared without a vocabulary. */
  tokenIds?: Int32Array[];
  labels: number[];
}

const item = (type: Binary | Int16 | Int32 | Struct) => new Field("item", type, false);
const TOKEN_IDS = new List(item(new Int32()));
const CAPTION = new Struct([
  new Field("start", new Float64(), false),
  new Field("end", new Float64(), false),
  new Field("text", new Utf8(), false),
  new Field("token_ids", TOKEN_IDS, true),
]);

/** The Arrow schema of a shard; its metadata (one key: more would be written in a random order) is the version. */
export const SHARD_SCHEMA = new Schema(
  [
    new Field("id", new Utf8(), false),
    new Field("source", new Utf8(), false),
    new Field("path", new Utf8(), false),
    new Field("duration", new Float64(), false),
    new Field("span_start", new Float64(), false),
    new Field("span_end", new Float64(), false),
    new Field("source_fps", new Float64(), false),
    new Field("source_width", new Int32(), false),
    new Field("source_height", new Int32(), false),
    new Field("fps", new Float64(), false),
    new Field("width", new Int32(), false),
    new Field("height", new Int32(), false),
    new Field("num_frames", new Int32(), false),
    new Field("frames", new List(item(new Binary())), false),
    new Field("sample_rate", new Int32(), false),
    new Field("has_audio", new Bool(), false),
    new Field("audio", new List(item(new Int16())), false),
    new Field("captions", new List(item(CAPTION)), false),
    new Field("labels", new List(item(new Int32())), false),
  ],
  new Map([["vatt.schema_version", String(SHARD_SCHEMA_VERSION)]]),
);

/** Int32 offsets of consecutive lengths: [0, l0, l0 + l1, ...]. */
function offsetsOf(lengths: readonly number[]): Int32Array {
  const offsets = new Int32Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) {
    const next = offsets[i] + lengths[i];
    if (next > 0x7fffffff) {
      throw new RangeError(
        `a shard column chunk passed 2 GiB (Arrow int32 offsets): write fewer rows per batch`,
      );
    }
    offsets[i + 1] = next;
  }
  return offsets;
}

/** Concatenates byte arrays into one buffer. */
function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function binaryData(values: readonly Uint8Array[]): Data<Binary> {
  const offsets = offsetsOf(values.map((v) => v.length));
  const bytes = concatBytes(values, offsets[values.length]);
  return makeData({ type: new Binary(), length: values.length, valueOffsets: offsets, data: bytes });
}

function listData<T extends List>(type: T, lengths: readonly number[], child: Data): Data<T> {
  return makeData({ type, length: lengths.length, valueOffsets: offsetsOf(lengths), child }) as Data<T>;
}

function concatTyped<A extends Int16Array | Int32Array>(parts: readonly A[], make: (n: number) => A): A {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function captionsData(rows: readonly PreparedRow[]): Data {
  const all = rows.flatMap((r) => r.captions.map((c, i) => ({ c, ids: r.tokenIds?.[i] })));
  const ids = all.map((x) => x.ids);
  const idValues = concatTyped(
    ids.filter((x): x is Int32Array => x !== undefined),
    (n) => new Int32Array(n),
  );
  const validity = new Uint8Array(Math.ceil(all.length / 8));
  ids.forEach((x, i) => {
    if (x) validity[i >> 3] |= 1 << (i & 7);
  });
  const nulls = ids.filter((x) => x === undefined).length;
  const tokenIds = makeData({
    type: TOKEN_IDS,
    length: all.length,
    nullCount: nulls,
    nullBitmap: nulls > 0 ? validity : undefined,
    valueOffsets: offsetsOf(ids.map((x) => x?.length ?? 0)),
    child: makeData({ type: new Int32(), length: idValues.length, data: idValues }),
  });
  const struct = makeData({
    type: CAPTION,
    length: all.length,
    children: [
      makeData({ type: new Float64(), length: all.length, data: Float64Array.from(all, (x) => x.c.start) }),
      makeData({ type: new Float64(), length: all.length, data: Float64Array.from(all, (x) => x.c.end) }),
      vectorFromArray(
        all.map((x) => x.c.text),
        new Utf8(),
      ).data[0],
      tokenIds,
    ],
  });
  return listData(
    SHARD_SCHEMA.fields[17].type as List,
    rows.map((r) => r.captions.length),
    struct,
  );
}

function float64Column(rows: readonly PreparedRow[], pick: (r: PreparedRow) => number): Data {
  return makeData({ type: new Float64(), length: rows.length, data: Float64Array.from(rows, pick) });
}

function int32Column(rows: readonly PreparedRow[], pick: (r: PreparedRow) => number): Data {
  return makeData({ type: new Int32(), length: rows.length, data: Int32Array.from(rows, pick) });
}

function utf8Column(rows: readonly PreparedRow[], pick: (r: PreparedRow) => string): Data {
  return vectorFromArray(rows.map(pick), new Utf8()).data[0];
}

/** Prepared rows -> one Arrow record batch with `SHARD_SCHEMA`. */
export function shardRecordBatch(rows: readonly PreparedRow[]): RecordBatch {
  const f = SHARD_SCHEMA.fields;
  const hasAudio = new Uint8Array(Math.ceil(rows.length / 8));
  rows.forEach((r, i) => {
    if (r.hasAudio) hasAudio[i >> 3] |= 1 << (i & 7);
  });
  const frames = listData(
    f[13].type as List,
    rows.map((r) => r.frames.length),
    binaryData(rows.flatMap((r) => r.frames)),
  );
  const audioValues = concatTyped(
    rows.map((r) => r.audio),
    (n) => new Int16Array(n),
  );
  const audio = listData(
    f[16].type as List,
    rows.map((r) => r.audio.length),
    makeData({ type: new Int16(), length: audioValues.length, data: audioValues }),
  );
  const labelValues = Int32Array.from(rows.flatMap((r) => r.labels));
  const labels = listData(
    f[18].type as List,
    rows.map((r) => r.labels.length),
    makeData({ type: new Int32(), length: labelValues.length, data: labelValues }),
  );
  const children = [
    utf8Column(rows, (r) => r.id),
    utf8Column(rows, (r) => r.source),
    utf8Column(rows, (r) => r.path),
    float64Column(rows, (r) => r.duration),
    float64Column(rows, (r) => r.spanStart),
    float64Column(rows, (r) => r.spanEnd),
    float64Column(rows, (r) => r.sourceFps),
    int32Column(rows, (r) => r.sourceWidth),
    int32Column(rows, (r) => r.sourceHeight),
    float64Column(rows, (r) => r.fps),
    int32Column(rows, (r) => r.width),
    int32Column(rows, (r) => r.height),
    int32Column(rows, (r) => r.frames.length),
    frames,
    int32Column(rows, (r) => r.sampleRate),
    makeData({ type: new Bool(), length: rows.length, data: hasAudio }),
    audio,
    captionsData(rows),
    labels,
  ];
  const struct = makeData({ type: new Struct(SHARD_SCHEMA.fields), length: rows.length, children });
  return new RecordBatch(SHARD_SCHEMA, struct);
}

/** Where a column is missing or of the wrong type: the shard is not a vatt shard of this schema version. */
function columnOf(table: Table, name: string, file: string): readonly Data[] {
  const child = table.getChild(name);
  if (!child) {
    throw new Error(
      `${file}: column '${name}' is missing: not a vatt shard of schema version ${SHARD_SCHEMA_VERSION} ` +
        "(prepare it again with 'vatt prepare')",
    );
  }
  const expected = SHARD_SCHEMA.fields.find((f) => f.name === name)?.type;
  if (String(child.type) !== String(expected)) {
    throw new Error(
      `${file}: column '${name}' is ${child.type}, a vatt shard of schema version ${SHARD_SCHEMA_VERSION} has ` +
        `${expected} (prepare it again with 'vatt prepare')`,
    );
  }
  return child.data;
}

/** Slices of a list<binary> row: its values as subarrays of the Arrow buffer (no copy). */
function binaryListRow(list: Data, row: number): Uint8Array[] {
  const offsets = list.valueOffsets;
  const child = list.children[0];
  const first = offsets[list.offset + row];
  const last = offsets[list.offset + row + 1];
  const inner = child.valueOffsets;
  const values = child.values as Uint8Array;
  const out: Uint8Array[] = [];
  for (let k = first; k < last; k++) {
    out.push(values.subarray(inner[child.offset + k], inner[child.offset + k + 1]));
  }
  return out;
}

/** A list<primitive> row as a subarray of the child's values (no copy). */
function primitiveListRow<A extends Int16Array | Int32Array>(list: Data, row: number): A {
  const offsets = list.valueOffsets;
  const child = list.children[0];
  const values = child.values as A;
  return values.subarray(
    child.offset + offsets[list.offset + row],
    child.offset + offsets[list.offset + row + 1],
  ) as A;
}

const decoder = new TextDecoder();

function utf8At(data: Data, row: number): string {
  const o = data.valueOffsets;
  return decoder.decode((data.values as Uint8Array).subarray(o[data.offset + row], o[data.offset + row + 1]));
}

function captionsRow(list: Data, row: number): { captions: Caption[]; tokenIds?: Int32Array[] } {
  const offsets = list.valueOffsets;
  const struct = list.children[0];
  const [starts, ends, texts, ids] = struct.children;
  const first = offsets[list.offset + row];
  const last = offsets[list.offset + row + 1];
  const captions: Caption[] = [];
  const tokenIds: Int32Array[] = [];
  let allIds = true;
  for (let k = first; k < last; k++) {
    const at = struct.offset + k;
    captions.push({
      start: (starts.values as Float64Array)[starts.offset + at],
      end: (ends.values as Float64Array)[ends.offset + at],
      text: utf8At(texts, at),
    });
    if (ids.getValid(at)) tokenIds.push(primitiveListRow<Int32Array>(ids, at));
    else allIds = false;
  }
  return allIds && captions.length > 0 ? { captions, tokenIds } : { captions };
}

/** A bool from its bit-packed values (Arrow bool offsets count bits). */
function boolAt(data: Data, row: number): boolean {
  const bit = data.offset + row;
  return ((data.values as Uint8Array)[bit >> 3] & (1 << (bit & 7))) !== 0;
}

function numberAt(data: Data, row: number): number {
  return Number(data.values[data.offset + row]);
}

/**
 * The rows of a table read from a shard. Frames and audio are views into the table's buffers (no copy): copy what
 * must outlive the table. Throws, naming `file`, when a column is missing.
 */
export function* rowsOfTable(table: Table, file: string): Generator<PreparedRow> {
  const names = SHARD_SCHEMA.fields.map((f) => f.name);
  const columns = new Map(names.map((n) => [n, columnOf(table, n, file)]));
  const col = (name: string, chunk: number) => columns.get(name)![chunk];
  const chunks = columns.get("id")!.length;
  for (let c = 0; c < chunks; c++) {
    const n = col("id", c).length;
    for (let r = 0; r < n; r++) {
      yield {
        id: utf8At(col("id", c), r),
        source: utf8At(col("source", c), r),
        path: utf8At(col("path", c), r),
        duration: numberAt(col("duration", c), r),
        spanStart: numberAt(col("span_start", c), r),
        spanEnd: numberAt(col("span_end", c), r),
        sourceFps: numberAt(col("source_fps", c), r),
        sourceWidth: numberAt(col("source_width", c), r),
        sourceHeight: numberAt(col("source_height", c), r),
        fps: numberAt(col("fps", c), r),
        width: numberAt(col("width", c), r),
        height: numberAt(col("height", c), r),
        frames: binaryListRow(col("frames", c), r),
        sampleRate: numberAt(col("sample_rate", c), r),
        hasAudio: boolAt(col("has_audio", c), r),
        audio: primitiveListRow<Int16Array>(col("audio", c), r),
        ...captionsRow(col("captions", c), r),
        labels: Array.from(primitiveListRow<Int32Array>(col("labels", c), r)),
      };
    }
  }
}
