import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { Table, writeParquet } from "parquet-wasm";
import { shardFiles, shardRows } from "../../datasets/parquet.js";
import { SHARD_SCHEMA } from "../../datasets/parquet-schema.js";
import { collect, fixtureDir } from "../datasets/fixtures.js";
import { corpusRoot } from "./harness.js";
import { parquetTarget } from "./targets/parquet.js";
import { quickFuzz } from "./targets.js";

const corpus = (name: string) => readFile(join(corpusRoot(), "parquet", name));

describe("fuzz: Parquet shards and their manifest", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus: replayed, generated } = await quickFuzz(parquetTarget);
    assert.ok(replayed >= 9);
    assert.equal(generated, parquetTarget.quickRuns);
  });

  it("a shard whose footer announces 2 GB of metadata is refused, naming it, without holding 2 GB", async () => {
    const bytes = await corpus("footer-claims-2gb.parquet");
    assert.equal(bytes.readUInt32LE(bytes.length - 8), 0x7fffffff);
    const root = await fixtureDir({ "s.parquet": bytes });
    const before = process.memoryUsage().rss;
    await assert.rejects(
      collect(shardRows(join(root, "s.parquet"))),
      /s\.parquet: not a readable Parquet file/,
    );
    assert.ok(process.memoryUsage().rss - before < 256 * 2 ** 20, "resident memory grew by less than 256 MB");
  });

  it("a Parquet file with the shard's column names but other types is refused by column", async () => {
    const columns = Object.fromEntries(SHARD_SCHEMA.fields.map((f) => [f.name, Int32Array.from([1])]));
    const bytes = writeParquet(Table.fromIPCStream(tableToIPC(tableFromArrays(columns), "stream")));
    const root = await fixtureDir({ "s.parquet": bytes });
    await assert.rejects(
      collect(shardRows(join(root, "s.parquet"))),
      /s\.parquet: column 'id' is Int32, a vatt shard .* has Utf8/,
    );
  });

  it("a manifest naming a shard outside its folder, or none, is refused", async () => {
    for (const name of [
      "bug-path-outside.json",
      "bug-shards-null.json",
      "bug-no-settings.json",
      "bug-truncated.json",
    ]) {
      const dir = await fixtureDir({ "manifest.json": await corpus(name) });
      await assert.rejects(
        shardFiles(dir),
        (err: Error) => err.constructor === Error && err.message.startsWith(join(dir, "manifest.json")),
        name,
      );
    }
  });
});
