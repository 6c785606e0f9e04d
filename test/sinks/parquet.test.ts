import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import type { RecordBatch } from "apache-arrow";
import sharp from "sharp";
import { shardRows } from "../../datasets/parquet.js";
import { type PreparedRow, SHARD_SCHEMA, shardRecordBatch } from "../../datasets/parquet-schema.js";
import { sha256File, writeParquetFile } from "../../sinks/parquet-writer.js";
import { makeTempDir, removeDir } from "../media.js";

/** A small row with real JPEG frames (solid colours) and a ramp of audio. */
async function row(id: string, frames: number, captions: number): Promise<PreparedRow> {
  const jpegs = await Promise.all(
    Array.from({ length: frames }, (_, k) =>
      sharp({ create: { width: 24, height: 16, channels: 3, background: { r: k * 20, g: 80, b: 160 } } })
        .jpeg({ quality: 90 })
        .toBuffer(),
    ),
  );
  return {
    id,
    source: "test",
    path: `videos/${id}.mp4`,
    duration: frames / 10,
    spanStart: 0,
    spanEnd: frames / 10,
    sourceFps: 25,
    sourceWidth: 48,
    sourceHeight: 32,
    fps: 10,
    width: 24,
    height: 16,
    frames: jpegs,
    sampleRate: 48_000,
    hasAudio: id !== "silent",
    audio: id === "silent" ? new Int16Array(0) : Int16Array.from({ length: 4800 }, (_, j) => j - 2400),
    captions: Array.from({ length: captions }, (_, i) => ({
      start: i,
      end: i + 2,
      text: `caption ${i} of ${id}`,
    })),
    ...(captions > 0
      ? {
          tokenIds: Array.from({ length: captions }, (_, i) =>
            Int32Array.from({ length: 16 }, (_, j) => (j < 3 ? i + 4 + j : 0)),
          ),
        }
      : {}),
    labels: id === "silent" ? [] : [1, 5],
  };
}

async function* batchesOf(rows: PreparedRow[]): AsyncGenerator<RecordBatch> {
  for (const r of rows) yield shardRecordBatch([r]);
}

describe("sinks/parquet-writer", () => {
  let dir: string;
  let rows: PreparedRow[];
  before(async () => {
    dir = await makeTempDir("vatt-parquet-sink-");
    rows = [await row("a", 5, 2), await row("silent", 3, 0), await row("c", 7, 1)];
  });
  after(() => removeDir(dir));

  it("writes a file DuckDB reads with the shard schema, deterministic bytes and a correct sha256", async () => {
    const path = join(dir, "one.parquet");
    const written = await writeParquetFile(path, batchesOf(rows), { rowGroupBytes: 1 << 20 });
    assert.equal(written.rows, 3);
    assert.equal(written.sha256, await sha256File(path));
    assert.equal(
      written.sha256,
      createHash("sha256")
        .update(await readFile(path))
        .digest("hex"),
    );
    const again = await writeParquetFile(join(dir, "two.parquet"), batchesOf(rows), {
      rowGroupBytes: 1 << 20,
    });
    assert.equal(again.sha256, written.sha256, "same rows and settings must give the same bytes");
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.endsWith(".partial")),
      [],
      "no partial file is left behind",
    );

    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const types = await db.runAndReadAll(`describe select * from read_parquet('${path}')`);
    const byName = Object.fromEntries(types.getRows().map((r) => [String(r[0]), String(r[1])]));
    assert.deepEqual(
      Object.keys(byName),
      SHARD_SCHEMA.fields.map((f) => f.name),
    );
    assert.equal(byName.frames, "BLOB[]");
    assert.equal(byName.audio, "SMALLINT[]");
    assert.equal(byName.labels, "INTEGER[]");
    assert.match(
      byName.captions,
      /STRUCT\("start" DOUBLE, "end" DOUBLE, "text" VARCHAR, token_ids INTEGER\[\]\)\[\]/,
    );
    const result = await db.runAndReadAll(
      `select id, len(frames), len(audio), has_audio, len(captions), captions[1].text, labels[2], frames[2]
       from read_parquet('${path}') order by id`,
    );
    const got = result.getRows();
    assert.deepEqual(
      got.map((r) => [r[0], Number(r[1]), Number(r[2]), r[3], Number(r[4]), r[5]]),
      [
        ["a", 5, 4800, true, 2, "caption 0 of a"],
        ["c", 7, 4800, true, 1, "caption 0 of c"],
        ["silent", 3, 0, false, 0, null],
      ],
    );
    const jpeg = (got[0][7] as { bytes: Uint8Array }).bytes;
    const meta = await sharp(jpeg).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["jpeg", 24, 16]);
  });

  it("reads rows back exactly (frames, audio, captions, token ids, labels)", async () => {
    const path = join(dir, "back.parquet");
    await writeParquetFile(path, batchesOf(rows), { rowGroupBytes: 4096 }); // tiny groups: one row each
    const back: PreparedRow[] = [];
    for await (const r of shardRows(path)) back.push(r);
    assert.equal(back.length, 3);
    for (const [i, r] of back.entries()) {
      const want = rows[i];
      assert.equal(r.id, want.id);
      assert.deepEqual(
        r.frames.map((f) => Buffer.from(f).toString("hex")),
        want.frames.map((f) => Buffer.from(f).toString("hex")),
      );
      assert.deepEqual(Array.from(r.audio), Array.from(want.audio));
      assert.deepEqual(r.captions, want.captions);
      assert.deepEqual(
        r.tokenIds?.map((t) => Array.from(t)),
        want.tokenIds?.map((t) => Array.from(t)),
      );
      assert.deepEqual(r.labels, want.labels);
      assert.equal(r.hasAudio, want.hasAudio);
      assert.equal(r.width, 24);
    }
  });

  it("removes the partial file and rethrows when the input fails", async () => {
    const path = join(dir, "broken.parquet");
    async function* failing(): AsyncGenerator<RecordBatch> {
      yield shardRecordBatch([rows[0]]);
      throw new Error("decoder exploded");
    }
    await assert.rejects(writeParquetFile(path, failing()), /decoder exploded/);
    const left = (await readdir(dir)).filter((f) => f.startsWith("broken"));
    assert.deepEqual(left, []);
  });
});
