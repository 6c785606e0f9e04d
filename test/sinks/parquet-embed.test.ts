import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { tableFromIPC } from "apache-arrow";
import { type EmbeddingBatch, writeEmbeddings } from "../../sinks/embed-writer.js";
import { makeTempDir, removeDir } from "../media.js";

function batch(from: number, n: number): EmbeddingBatch {
  const vec = (dim: number) => Float32Array.from({ length: n * dim }, (_, i) => from + i / 1000);
  return {
    ids: Array.from({ length: n }, (_, i) => `v${from + i}`),
    sources: Array.from({ length: n }, () => "howto100m"),
    clips: Array.from({ length: n }, (_, i) => i % 4),
    starts: Array.from({ length: n }, (_, i) => i * 3.2),
    ends: Array.from({ length: n }, (_, i) => i * 3.2 + 3.2),
    vectors: { video_va: vec(8), text_vt: vec(4) },
  };
}

async function* batches(): AsyncGenerator<EmbeddingBatch> {
  yield batch(0, 3);
  yield batch(3, 2);
}

describe("sinks/embed-writer", () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir("vatt-embed-");
  });
  after(() => removeDir(dir));

  it("writes ids and FixedSizeList<float32> vectors as an Arrow IPC file", async () => {
    const path = join(dir, "e.arrow");
    assert.equal(await writeEmbeddings(path, { video_va: 8, text_vt: 4 }, batches()), 5);
    const table = tableFromIPC(await readFile(path));
    assert.deepEqual(
      table.schema.fields.map((f) => `${f.name}:${f.type}`),
      [
        "id:Utf8",
        "source:Utf8",
        "clip:Int32",
        "start:Float64",
        "end:Float64",
        "video_va:FixedSizeList[8]<Float32>",
        "text_vt:FixedSizeList[4]<Float32>",
      ],
    );
    assert.equal(table.numRows, 5);
    assert.equal(table.getChild("id")?.get(4), "v4");
    assert.deepEqual(
      Array.from(table.getChild("text_vt")?.get(1) as Iterable<number>),
      Array.from(batch(0, 3).vectors.text_vt!.subarray(4, 8)),
    );
  });

  it("writes the same as Parquet that DuckDB reads (Parquet has no fixed-size list: FLOAT[] of 8)", async () => {
    const path = join(dir, "e.parquet");
    await writeEmbeddings(path, { video_va: 8, text_vt: 4 }, batches());
    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const r = await db.runAndReadAll(
      `select id, typeof(video_va), len(video_va), clip from read_parquet('${path}') order by id`,
    );
    assert.deepEqual(
      r.getRows().map((row) => [row[0], row[1], Number(row[2]), row[3]]),
      [
        ["v0", "FLOAT[]", 8, 0],
        ["v1", "FLOAT[]", 8, 1],
        ["v2", "FLOAT[]", 8, 2],
        ["v3", "FLOAT[]", 8, 0],
        ["v4", "FLOAT[]", 8, 1],
      ],
    );
  });

  it("rejects a vector block of the wrong size and an unknown extension, leaving no file", async () => {
    async function* bad(): AsyncGenerator<EmbeddingBatch> {
      yield { ...batch(0, 2), vectors: { video_va: new Float32Array(3) } };
    }
    await assert.rejects(
      writeEmbeddings(join(dir, "bad.arrow"), { video_va: 8 }, bad()),
      /video_va needs 2 x 8 floats, got 3/,
    );
    await assert.rejects(
      writeEmbeddings(join(dir, "e.csv"), { video_va: 8 }, batches()),
      /\.arrow or \.parquet/,
    );
  });
});
