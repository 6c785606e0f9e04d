import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import sharp from "sharp";
import { shardOption } from "../../bin/commands/prepare.js";
import { SkipLog } from "../../core/skips.js";
import { readShardManifest, receiptFile, shardFile } from "../../datasets/parquet-manifest.js";
import { synthesizeDataset } from "../../datasets/synth.js";
import { prepareShards, shardOfSpan } from "../../pipeline/prepare.js";
import { sha256File } from "../../sinks/parquet-writer.js";
import { makeTempDir, removeDir } from "../media.js";

const SMALL = { width: 96, height: 64, fps: 10, minSeconds: 6, maxSeconds: 10 };
const SETTINGS = { shortSide: 48, concurrency: 1 } as const;

async function shardHashes(dir: string, n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => sha256File(join(dir, shardFile(i, n)))));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Runs `vatt prepare` through its Command object in a child process (bin/vatt.ts registers it separately). */
function spawnPrepare(argv: string[]) {
  const command = fileURLToPath(new URL("../../bin/commands/prepare.js", import.meta.url));
  const cli = fileURLToPath(new URL("../../bin/cli.js", import.meta.url));
  const script = `
    const { prepareCommand } = await import(${JSON.stringify(command)});
    const { parseCommandArgs } = await import(${JSON.stringify(cli)});
    process.exitCode = await prepareCommand.run(parseCommandArgs(prepareCommand, ${JSON.stringify(argv)}));`;
  return spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}

describe("pipeline/prepare", () => {
  let root: string;
  let howto: string;
  before(async () => {
    root = await makeTempDir("vatt-prepare-");
    howto = join(root, "howto");
    await synthesizeDataset({ kind: "howto100m", out: howto, videos: 6, seed: 7, ...SMALL });
  });
  after(() => removeDir(root));

  it("stores long videos as several rows of at most --max-row-seconds, covering the whole video once", async () => {
    const out = join(root, "stretches");
    await prepareShards({
      dataset: howto,
      kind: "howto100m",
      out,
      numShards: 1,
      ...SETTINGS,
      maxRowSeconds: 4,
    });
    const manifest = await readShardManifest(out);
    assert.equal(manifest.settings.maxRowSeconds, 4);
    assert.ok(manifest.rows > 6, `${manifest.rows} rows for 6 videos of 6-10 s`);
    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const rows = await db.runAndReadAll(
      `select id, span_start, span_end, duration, num_frames, len(captions) from read_parquet('${join(out, "*.parquet")}') order by id, span_start`,
    );
    const byVideo = new Map<string, number[][]>();
    for (const [id, start, end, duration, frames] of rows.getRows()) {
      const spans = byVideo.get(String(id)) ?? [];
      spans.push([Number(start), Number(end), Number(duration), Number(frames)]);
      byVideo.set(String(id), spans);
    }
    assert.equal(byVideo.size, 6);
    for (const [id, spans] of byVideo) {
      assert.equal(spans[0][0], 0, `${id} starts at 0`);
      for (let k = 1; k < spans.length; k++)
        assert.equal(spans[k][0], spans[k - 1][1], `${id}: stretches are contiguous`);
      assert.ok(
        Math.abs(spans.at(-1)![1] - spans[0][2]) < 0.2,
        `${id}: the last stretch runs to the end of the file`,
      );
      for (const [start, end, , frames] of spans.slice(0, -1)) {
        assert.ok(
          end - start <= 4 + 1e-9 && Math.abs(frames - (end - start) * 10) <= 1,
          `${id}: ${start}-${end}, ${frames} frames`,
        );
      }
    }
  });

  it("writes shards DuckDB opens: row counts, column types, frames that decode to the stored size", async () => {
    const out = join(root, "plain");
    const result = await prepareShards({ dataset: howto, kind: "howto100m", out, numShards: 2, ...SETTINGS });
    assert.deepEqual(result.written, [0, 1]);
    assert.ok(result.manifest, "manifest.json is written once every shard is finished");
    const manifest = await readShardManifest(out);
    assert.equal(manifest.rows, 6);
    assert.equal(manifest.numShards, 2);
    for (const s of manifest.shards) assert.equal(s.sha256, await sha256File(join(out, s.file)));

    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const glob = join(out, "*.parquet");
    const counts = await db.runAndReadAll(
      `select count(*), sum(num_frames), sum(len(frames)) from read_parquet('${glob}')`,
    );
    assert.deepEqual(counts.getRows()[0].map(Number), [6, manifest.frames, manifest.frames]);
    const types = await db.runAndReadAll(
      `select typeof(frames), typeof(audio), typeof(captions), typeof(id) from read_parquet('${glob}') limit 1`,
    );
    assert.deepEqual(types.getRows()[0], [
      "BLOB[]",
      "SMALLINT[]",
      'STRUCT("start" DOUBLE, "end" DOUBLE, "text" VARCHAR, token_ids INTEGER[])[]',
      "VARCHAR",
    ]);
    const rows = await db.runAndReadAll(
      `select frames[1], width, height, fps, sample_rate, len(audio), span_end - span_start, len(captions), path
       from read_parquet('${glob}')`,
    );
    for (const r of rows.getRows()) {
      const meta = await sharp((r[0] as { bytes: Uint8Array }).bytes).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ["jpeg", r[1], r[2]]);
      assert.deepEqual([r[1], r[2]], [72, 48], "short side scaled to 48, aspect kept");
      assert.equal(r[3], 10);
      assert.equal(r[4], 48000);
      assert.equal(Number(r[5]), Math.round((r[6] as number) * 48000), "audio covers the span at 48 kHz");
      assert.ok(Number(r[7]) > 0, "captions stored");
      assert.match(String(r[8]), /^videos\/.+\.mp4$/, "paths relative to the dataset folder");
    }
  });

  it("assigns spans to shards by a pure function of their key; --shard writes disjoint shards", async () => {
    const a = { source: "howto100m", id: "abc" };
    assert.equal(shardOfSpan(a, 7), shardOfSpan({ ...a }, 7));
    const spread = new Set(
      Array.from({ length: 200 }, (_, i) => shardOfSpan({ source: "x", id: `v${i}` }, 4)),
    );
    assert.equal(spread.size, 4);
    const out = join(root, "split");
    const one = await prepareShards({
      dataset: howto,
      kind: "howto100m",
      out,
      numShards: 2,
      shard: 1,
      ...SETTINGS,
    });
    assert.deepEqual(one.written, [1]);
    assert.equal(one.manifest, undefined, "no manifest while shard 0 is missing");
    const zero = await prepareShards({
      dataset: howto,
      kind: "howto100m",
      out,
      numShards: 2,
      shard: 0,
      ...SETTINGS,
    });
    assert.ok(zero.manifest);
    assert.deepEqual(await shardHashes(out, 2), await shardHashes(join(root, "plain"), 2));
  });

  it("gives the same shards when killed after the first shard and run again", async () => {
    const args = ["--dataset", howto, "--kind", "howto100m", "--num-shards", "3", "--short-side", "48"];
    const whole = join(root, "whole");
    await prepareShards({ dataset: howto, kind: "howto100m", out: whole, numShards: 3, ...SETTINGS });

    const killed = join(root, "killed");
    const child = spawnPrepare([...args, "--out", killed, "--concurrency", "1", "--quiet"]);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const firstDone = join(killed, receiptFile(0, 3));
    let stopped = false;
    while (!stopped) {
      if (await exists(firstDone)) {
        child.kill("SIGKILL");
        stopped = true;
      } else if (child.exitCode !== null) break;
      else await new Promise((r) => setTimeout(r, 2));
    }
    await exited;
    assert.ok(stopped, "the child was killed after shard 0 was finished");
    assert.equal(await exists(join(killed, "manifest.json")), false, "an interrupted run has no manifest");

    const skips = new SkipLog();
    const resumed = await prepareShards({
      dataset: howto,
      kind: "howto100m",
      out: killed,
      numShards: 3,
      skips,
      ...SETTINGS,
    });
    assert.ok(resumed.reused.includes(0), "the finished shard is kept");
    assert.ok(resumed.manifest);
    assert.deepEqual(await shardHashes(killed, 3), await shardHashes(whole, 3));
    assert.equal(
      await readFile(join(killed, "manifest.json"), "utf8"),
      await readFile(join(whole, "manifest.json"), "utf8"),
    );
    assert.deepEqual(
      (await readdir(killed)).filter((f) => f.includes(".partial")),
      [],
      "no partial file left",
    );
  });

  it("refuses to mix shards prepared with other settings", async () => {
    await assert.rejects(
      prepareShards({
        dataset: howto,
        kind: "howto100m",
        out: join(root, "plain"),
        numShards: 2,
        shortSide: 32,
      }),
      /prepared with other settings: shortSide 48 \(now 32\)/,
    );
  });

  it("skips and counts a corrupt video instead of failing", async () => {
    const broken = join(root, "broken");
    await cp(howto, broken, { recursive: true });
    const videos = (await readdir(join(broken, "videos"))).sort();
    await writeFile(join(broken, "videos", videos[0]), Buffer.alloc(5000, 7));
    const skips = new SkipLog();
    const out = join(root, "broken-out");
    const result = await prepareShards({
      dataset: broken,
      kind: "howto100m",
      out,
      numShards: 1,
      skips,
      ...SETTINGS,
    });
    assert.equal(result.shards[0].rows, 5);
    assert.equal(skips.count, 1);
    assert.deepEqual(Object.keys(result.shards[0].skipped), ["prepare:decode:invalid"]);
    assert.match(skips.lastEvents()[0].message, new RegExp(videos[0].replace(".mp4", "")));
  });

  it("prepares AudioSet segments with labels and manifest rows as spans", async () => {
    const audioset = join(root, "audioset");
    const truth = await synthesizeDataset({ kind: "audioset", out: audioset, videos: 4, seed: 3, ...SMALL });
    const balanced = truth.videos.filter((v) => v.split === "balanced_train" && v.file).length;
    const out = join(root, "audioset-out");
    const result = await prepareShards({
      dataset: audioset,
      kind: "audioset",
      out,
      numShards: 1,
      ...SETTINGS,
    });
    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const labels = await db.runAndReadAll(
      `select len(labels), len(captions), source from read_parquet('${join(out, "*.parquet")}')`,
    );
    assert.equal(result.shards[0].rows, balanced);
    for (const r of labels.getRows())
      assert.deepEqual([Number(r[0]) > 0, Number(r[1]), r[2]], [true, 0, "audioset"]);

    const videos = (await readdir(join(howto, "videos"))).sort().slice(0, 2);
    const csv = [
      "path,start,end,text,labels",
      ...videos.map((v, i) => `videos/${v},1,3.5,clip ${i} words,${i}`),
    ];
    await writeFile(join(howto, "manifest.csv"), `${csv.join("\n")}\n`);
    const mout = join(root, "manifest-out");
    await prepareShards({ dataset: howto, kind: "manifest", out: mout, numShards: 1, ...SETTINGS });
    const spans = await db.runAndReadAll(
      `select span_start, span_end, num_frames, len(audio), captions[1].text from read_parquet('${join(mout, "*.parquet")}')`,
    );
    assert.deepEqual(
      spans.getRows().map((r) => [r[0], r[1], r[2], Number(r[3])]),
      [
        [1, 3.5, 25, 120000],
        [1, 3.5, 25, 120000],
      ],
    );
  });

  it("--shard auto reads the scheduler's task index", () => {
    const args = { values: { shard: "auto" }, positionals: [] };
    assert.equal(shardOption(args, 8, { JOB_COMPLETION_INDEX: "3" }), 3);
    assert.equal(shardOption(args, 8, { SLURM_ARRAY_TASK_ID: "7" }), 7);
    assert.throws(() => shardOption(args, 8, {}), /needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID/);
    assert.throws(
      () => shardOption(args, 8, { SLURM_ARRAY_TASK_ID: "8" }),
      /\$SLURM_ARRAY_TASK_ID must be a shard index in \[0, 7\]/,
    );
  });
});
