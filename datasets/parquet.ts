/**
 * Reading `vatt prepare` shards: the shard files of a folder (from its manifest), the rows of one shard row group by
 * row group, and the rows one worker of several reads in an epoch, in a seeded order. One row group is in memory at
 * a time. What is cut from the rows is pipeline/parquet-examples.ts's.
 */
import { openAsBlob } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { type Random, randomFor } from "../core/random.js";
import { freeParquetFile, parquetWasm, readParquetGuarded } from "./parquet-guard.js";
import { readShardManifest } from "./parquet-manifest.js";
import { type PreparedRow, rowsOfTable } from "./parquet-schema.js";

/** The Parquet shard files of a folder and whether they store token ids, from its manifest (version checked). */
export async function shardFiles(dir: string): Promise<{ files: string[]; storedText: boolean }> {
  const manifest = await readShardManifest(dir);
  return {
    files: manifest.shards.map((s) => join(dir, s.file)),
    storedText: manifest.settings.vocab !== null,
  };
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, rng: Random): number[] {
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

/**
 * The rows worker `worker.index` of `worker.count` reads in `epoch`: its shards (file k belongs to worker k mod
 * count) in an order drawn from (seed, epoch, worker), each shard's row groups in an order drawn from (seed, epoch,
 * its place among the worker's shards).
 */
export async function* epochRows(
  files: readonly string[],
  seed: number,
  epoch: number,
  worker: { index: number; count: number },
): AsyncGenerator<PreparedRow> {
  const mine = files.filter((_, k) => k % worker.count === worker.index);
  for (const k of permutation(mine.length, randomFor(seed, epoch, worker.index, "parquet:shards"))) {
    yield* shardRows(mine[k], randomFor(seed, epoch, k, "parquet:row-groups"));
  }
}
