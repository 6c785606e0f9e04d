/**
 * Writes per-clip common-space embeddings as Arrow IPC (.arrow, the file format) or Parquet (.parquet, zstd):
 *
 *   id utf8, source utf8, clip int32 (window index within the video), start float64, end float64,
 *   video_va fixed_size_list<float32>[512]   video in the video-audio space   (each present only when given)
 *   video_vt fixed_size_list<float32>[256]   video in the video-text space
 *   audio_va fixed_size_list<float32>[512]
 *   text_vt  fixed_size_list<float32>[256]   the clip's first caption
 *
 * Vectors are as the heads give them (not L2-normalised: retrieval normalises). Batches are streamed: the writer
 * holds one batch, and the file appears under its name only when complete (temp name, then rename).
 */
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { extname } from "node:path";
import { pipeline } from "node:stream/promises";
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { partialName, writeParquetFile } from "./parquet-writer.js";

/** The embedding spaces a file can hold, in column order. */
export const EMBEDDING_COLUMNS = ["video_va", "video_vt", "audio_va", "text_vt"] as const;
export type EmbeddingColumn = (typeof EMBEDDING_COLUMNS)[number];

/** A batch of B clips: ids and row-major [B, dim] vectors for the spaces present. */
export interface EmbeddingBatch {
  ids: string[];
  sources: string[];
  clips: number[];
  starts: number[];
  ends: number[];
  vectors: Partial<Record<EmbeddingColumn, Float32Array>>;
}

/** The schema for the given vector widths (only the spaces with a width get a column). */
export function embeddingSchema(dims: Partial<Record<EmbeddingColumn, number>>): Schema {
  const vectorFields = EMBEDDING_COLUMNS.filter((c) => dims[c] !== undefined).map(
    (c) => new Field(c, new FixedSizeList(dims[c]!, new Field("item", new Float32(), false)), false),
  );
  return new Schema([
    new Field("id", new Utf8(), false),
    new Field("source", new Utf8(), false),
    new Field("clip", new Int32(), false),
    new Field("start", new Float64(), false),
    new Field("end", new Float64(), false),
    ...vectorFields,
  ]);
}

/** One Arrow batch of embeddings; checks every vector block is [B, dim]. */
export function embeddingRecordBatch(schema: Schema, batch: EmbeddingBatch): RecordBatch {
  const n = batch.ids.length;
  for (const key of ["sources", "clips", "starts", "ends"] as const) {
    if (batch[key].length !== n)
      throw new RangeError(`embedding batch: ${key} has ${batch[key].length} entries, ids ${n}`);
  }
  const children: Data[] = [
    vectorFromArray(batch.ids, new Utf8()).data[0],
    vectorFromArray(batch.sources, new Utf8()).data[0],
    makeData({ type: new Int32(), length: n, data: Int32Array.from(batch.clips) }),
    makeData({ type: new Float64(), length: n, data: Float64Array.from(batch.starts) }),
    makeData({ type: new Float64(), length: n, data: Float64Array.from(batch.ends) }),
  ];
  for (const field of schema.fields.slice(5)) {
    const type = field.type as FixedSizeList;
    const values = batch.vectors[field.name as EmbeddingColumn];
    if (!values || values.length !== n * type.listSize) {
      throw new RangeError(
        `embedding batch: ${field.name} needs ${n} x ${type.listSize} floats, got ${values?.length ?? "none"}`,
      );
    }
    const child = makeData({ type: new Float32(), length: values.length, data: values });
    children.push(makeData({ type, length: n, child }));
  }
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
}

async function writeArrowFile(path: string, batches: AsyncIterable<RecordBatch>): Promise<number> {
  const partial = partialName(path);
  const writer = new RecordBatchFileWriter();
  const done = pipeline(writer.toNodeStream(), createWriteStream(partial));
  let rows = 0;
  try {
    for await (const b of batches) {
      writer.write(b);
      rows += b.numRows;
    }
    writer.finish();
    writer.close();
    await done;
  } catch (err) {
    writer.close(); // ends the byte stream; the partial file is removed below
    await done.catch(() => {});
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, path);
  return rows;
}

/**
 * Streams embedding batches into `path`: .arrow (Arrow IPC file) or .parquet. `dims` names the spaces and widths,
 * e.g. { video_va: 512, video_vt: 256, audio_va: 512, text_vt: 256 }. Returns the number of rows written.
 */
export async function writeEmbeddings(
  path: string,
  dims: Partial<Record<EmbeddingColumn, number>>,
  batches: AsyncIterable<EmbeddingBatch>,
): Promise<number> {
  const ext = extname(path).toLowerCase();
  if (ext !== ".arrow" && ext !== ".parquet") {
    throw new Error(`${path}: embeddings are written as .arrow or .parquet; choose one of those extensions`);
  }
  const schema = embeddingSchema(dims);
  async function* arrowBatches(): AsyncGenerator<RecordBatch> {
    for await (const b of batches) yield embeddingRecordBatch(schema, b);
  }
  if (ext === ".arrow") return writeArrowFile(path, arrowBatches());
  return (await writeParquetFile(path, arrowBatches())).rows;
}
