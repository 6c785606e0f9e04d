/**
 * Streams Arrow record batches into one Parquet file with bounded memory, deterministic bytes and an atomic finish.
 *
 * - Streaming: parquet-wasm's `transformParquetStream` pulls one batch at a time and emits the file's bytes row
 *   group by row group; a row group closes when its uncompressed size passes `rowGroupBytes`. Measured: the
 *   process holds about 5 row groups at the peak (input being encoded, the encoded group, its copy out of
 *   WebAssembly), so memory depends on `rowGroupBytes`, not on the file size (see bench/parquet.ts).
 * - Deterministic: fixed writer settings, a fixed `created_by`, no timestamps; the same batches give the same bytes.
 * - Atomic: bytes go to `<file>.partial`, are fsynced, then renamed; a file under its real name is always complete.
 *   The SHA-256 and size are computed on the way out, so no second read is needed.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { type RecordBatch, Table, tableToIPC } from "apache-arrow";
import * as parquet from "parquet-wasm";

export interface ParquetWriteOptions {
  /** A row group closes once its uncompressed size passes this many bytes (default 64 MiB). */
  rowGroupBytes?: number;
  /**
   * ONE key-value pair stored in the file footer. One, because parquet-wasm keeps key-value metadata in a hash
   * map whose iteration order changes from run to run: two keys would make the bytes nondeterministic.
   */
  metadata?: { key: string; value: string };
}

export interface WrittenParquet {
  path: string;
  bytes: number;
  sha256: string;
  rows: number;
}

export const DEFAULT_ROW_GROUP_BYTES = 64 * 1024 * 1024;

/** `created_by` in every file we write: fixed, so files do not change with the build. */
const CREATED_BY = "vatt (parquet-wasm 0.8)";

/**
 * The fixed writer settings: zstd everywhere (JPEG bytes still shrink ~10-30 %: repeated headers and tables),
 * row groups by size, parquet-rs defaults otherwise (dictionary pages help int16 audio: ~20 % smaller). Per-column
 * settings cannot reach nested columns through parquet-wasm (it does not split "a.list.item" into a path).
 */
export function writerProperties(opts: ParquetWriteOptions = {}): parquet.WriterProperties {
  let b = new parquet.WriterPropertiesBuilder()
    .setCompression(parquet.Compression.ZSTD)
    .setMaxRowGroupSize(1 << 30) // rows never close a group; bytes do
    .setMaxRowGroupBytes(opts.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES)
    .setCreatedBy(CREATED_BY);
  if (opts.metadata) b = b.setKeyValueMetadata(new Map([[opts.metadata.key, opts.metadata.value]]));
  return b.build();
}

/** An Arrow JS batch -> a parquet-wasm batch (through one IPC message: the only bridge the wasm build offers). */
function toWasmBatch(batch: RecordBatch): parquet.RecordBatch {
  const table = parquet.Table.fromIPCStream(tableToIPC(new Table(batch), "stream"));
  try {
    const wasmBatch = table.recordBatch(0);
    if (!wasmBatch) throw new Error("internal: an Arrow batch came back from IPC with no rows");
    return wasmBatch;
  } finally {
    table.free();
  }
}

/** The name an unfinished file has while it is written. */
export function partialName(path: string): string {
  return `${path}.partial`;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (!handle) return; // some filesystems do not allow opening a directory: the rename is still atomic
  try {
    await handle.sync().catch(() => {});
  } finally {
    await handle.close();
  }
}

/**
 * Writes `batches` (all of one schema) into the Parquet file `path` and returns its size and SHA-256. Holds one
 * row group in memory, not the file. On any error the partial file is removed and the error rethrown.
 */
export async function writeParquetFile(
  path: string,
  batches: AsyncIterable<RecordBatch>,
  opts: ParquetWriteOptions = {},
): Promise<WrittenParquet> {
  const partial = partialName(path);
  await rm(partial, { force: true });
  const handle = await open(partial, "w");
  const hash = createHash("sha256");
  let bytes = 0;
  let rows = 0;
  let inputError: unknown;
  const iterator = batches[Symbol.asyncIterator]();
  const input = new ReadableStream<parquet.RecordBatch>(
    {
      async pull(controller) {
        try {
          const step = await iterator.next();
          if (step.done) {
            controller.close();
            return;
          }
          rows += step.value.numRows;
          controller.enqueue(toWasmBatch(step.value));
        } catch (err) {
          // parquet-wasm ends its output normally when its input errors (a valid file of the rows so far): the
          // failure is kept here and rethrown, or a truncated shard would look finished.
          inputError = err;
          controller.error(err);
        }
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
  try {
    const output = await parquet.transformParquetStream(input, writerProperties(opts));
    const reader = (output as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      bytes += value.length;
      await handle.write(value);
    }
    if (inputError !== undefined) throw inputError;
    await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(partial, { force: true });
    await iterator.return?.().catch(() => {});
    throw err;
  }
  await rename(partial, path);
  await syncDirectory(dirname(path));
  return { path, bytes, sha256: hash.digest("hex"), rows };
}

/** SHA-256 of a file, streamed (to check a finished shard against its manifest entry). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
