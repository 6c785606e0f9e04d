import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { RetiredFiles } from "../../core/retired.js";
import { SkipLog } from "../../core/skips.js";
import { synthesizeDataset } from "../../datasets/synth.js";
import { Vocabulary } from "../../operators/tokenize.js";
import { resolveConfig } from "../../pipeline/config.js";
import { runPretraining } from "../../pipeline/pretrain.js";
import { positionedBatches, runModelConfig } from "../../pipeline/pretrain-data.js";
import { RetirementWatch } from "../../pipeline/retirement.js";

const VATT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "vatt.js");
const small = { width: 96, height: 64, fps: 10, minSeconds: 6, maxSeconds: 10 } as const;
const CSV = "HowTo100M_v1.csv";
const BAD_ROW = ",Food,Baking,1,100"; // no video_id: a bad row met on every pass

let dir: string;
/** Three videos, the first of them corrupt, and one bad CSV row. */
let data: string;
let corrupt: string;

/** A copy of the synthetic set with `how` of its videos (sorted) overwritten by junk and a bad CSV row. */
async function brokenCopy(name: string, how: number): Promise<{ root: string; broken: string[] }> {
  const root = join(dir, name);
  await cp(join(dir, "clean"), root, { recursive: true });
  const videos = (await readdir(join(root, "videos"))).sort().slice(0, how);
  for (const v of videos) await writeFile(join(root, "videos", v), Buffer.alloc(5000, 7));
  await appendFile(join(root, CSV), `${BAD_ROW}\n`);
  return { root, broken: videos.map((v) => join(root, "videos", v)) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-retire-"));
  await synthesizeDataset({ kind: "howto100m", out: join(dir, "clean"), videos: 3, seed: 3, ...small });
  const copy = await brokenCopy("data", 1);
  data = copy.root;
  corrupt = copy.broken[0];
});
after(async () => {
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
  else console.error(dir);
});

function config(runDir: string, steps: number) {
  return resolveConfig({
    runDir: join(dir, runDir),
    seed: 5,
    data: { howto100m: data, heldOutShare: 0, decodeShortSide: 64, retireAfter: 3 },
    // A flat learning rate: the schedule then does not depend on the run's total steps, so a run stopped at step 2
    // and resumed to 7 trains exactly as one run of 7 steps.
    train: {
      steps,
      batchSize: 2,
      warmupSteps: 0,
      learningRate: 1e-4,
      finalLearningRate: 1e-4,
      checkpointEvery: 1000,
      evalEvery: 0,
    },
  });
}

async function events(runDir: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(dir, runDir, "metrics.jsonl"), "utf8");
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

const decodeKey = (tallies: Record<string, unknown>) =>
  Object.keys(tallies).find((k) => k.startsWith("decode:"));
const quiet = { log: () => {}, skipFinalEval: true };

describe("retiring files that fail pass after pass", () => {
  it("asks for a corrupt video in 3 passes only, lists it, and counts a bad row once with its passes", async () => {
    // Two good videos and batches of 2: one step per pass, so 7 steps read 7 passes or more.
    const r = await runPretraining(config("straight", 7), quiet);
    assert.equal(r.summary.step, 7);
    assert.deepEqual(
      r.retired.map((e) => [e.file, e.passes, e.fromPass, e.rule]),
      [[corrupt, [0, 1, 2], 3, "passes"]],
    );
    const key = decodeKey(r.skipTallies);
    assert.ok(key, `a decode skip: ${JSON.stringify(r.skips)}`);
    assert.deepEqual(
      r.skipTallies[key],
      { count: 3, items: 1, passes: { min: 3, max: 3 }, unit: "file" },
      "decoded (and failed) in passes 0, 1 and 2, never after",
    );
    const row = r.skipTallies[`howto100m:${CSV}:bad-row`];
    assert.equal(row.items, 1, "one bad line");
    assert.ok(row.passes.max >= 7, `seen in every pass read (${row.passes.max})`);
    assert.equal(row.count, row.passes.max, "once per pass");
    assert.equal(r.skips[`howto100m:${CSV}:bad-row`], row.count, "the raw count is kept");

    const listed = JSON.parse(await readFile(join(dir, "straight", "retired-files.json"), "utf8"));
    assert.deepEqual(
      listed.retired.map((e: { file: string; passes: number[] }) => [e.file, e.passes]),
      [[corrupt, [0, 1, 2]]],
    );
    assert.match(listed.retired[0].message, /check the file with 'vatt probe'/);
    assert.equal(r.files.retired, join(dir, "straight", "retired-files.json"));
    const end = (await events("straight")).find((e) => e.event === "end")!;
    assert.deepEqual(end.skips, r.skips, "the end line keeps its counts");
    assert.deepEqual(end.skipTallies, r.skipTallies);
    assert.deepEqual(
      (end.retired as { file: string }[]).map((e) => e.file),
      [corrupt],
    );
  });

  it("stays retired across --resume, and resumed runs give the same losses as the straight run", async () => {
    // Stop before the retirement (step 2: pass 1), after it (step 5: pass 4), finish on the command line.
    const first = await runPretraining(config("resumed", 2), quiet);
    assert.deepEqual(first.retired, []);
    const second = await runPretraining(config("resumed", 5), { ...quiet, resume: true });
    assert.deepEqual(
      second.retired.map((e) => [e.file, e.passes, e.fromPass]),
      [[corrupt, [0, 1, 2], 3]],
      "the failures before the stop still count: the bookkeeping came back with the checkpoint",
    );
    const cli = spawnSync(
      process.execPath,
      [VATT, "pretrain", "--resume", "--run-dir", join(dir, "resumed"), "--steps", "7"],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stderr, /1 retired file stays retired/);
    assert.doesNotMatch(cli.stdout, /^ {2}decode /m, "not asked for again after the resume");
    assert.match(cli.stdout, /howto100m:HowTo100M_v1\.csv bad-row: 1 line, seen in \d+ passes \(\d+ skips\)/);
    assert.match(cli.stdout, /retired files \(not asked for again; .*retired-files\.json\):/);
    assert.match(
      cli.stdout,
      new RegExp(`${corrupt.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: failed in passes 0, 1, 2`),
    );

    const losses = async (runDir: string) =>
      new Map((await events(runDir)).filter((e) => e.event === "step").map((e) => [e.step, e.loss]));
    const a = await losses("straight");
    const b = await losses("resumed");
    for (let step = 1; step <= 7; step++) {
      assert.ok(Number.isFinite(a.get(step)), `step ${step} logged`);
      assert.ok(Math.abs((a.get(step) as number) - (b.get(step) as number)) < 1e-4, `step ${step}`);
    }
  });

  it("retires at once on a reason that says so: one decode, its other clips dropped from then on", async () => {
    const c = resolveConfig({
      // One decode at a time: a clip already being decoded when the file fails cannot be taken back.
      data: {
        howto100m: data,
        heldOutShare: 0,
        decodeShortSide: 64,
        clipsPerVideo: 2,
        shuffleBuffer: 0,
        concurrency: 1,
      },
      train: { batchSize: 2 },
    });
    const skips = new SkipLog();
    const files = new RetiredFiles({ after: 3, atOnce: () => true });
    const stream = positionedBatches({
      config: c,
      model: runModelConfig(c, 64),
      vocab: new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>"]),
      skips,
      retirement: new RetirementWatch(files),
    });
    let batches = 0;
    for await (const _ of stream) if (++batches === 4) break; // 2 good videos x 2 clips: 2 batches a pass
    const key = decodeKey(skips.tallies());
    assert.ok(key);
    assert.equal(skips.tallies()[key].count, 1, "the clip after the failure was dropped, not decoded");
    assert.deepEqual(
      files.entries().map((e) => [e.file, e.fromPass, e.rule]),
      [[corrupt, 0, "at-once"]],
    );
  });

  it("ends the data when every file is retired, and with --follow waits instead of reading on", async () => {
    const { root, broken } = await brokenCopy("all-broken", 3);
    const c = (follow: boolean) =>
      resolveConfig({
        data: { howto100m: root, heldOutShare: 0, decodeShortSide: 64, follow },
        train: { batchSize: 2 },
      });
    const run = (follow: boolean, signal?: AbortSignal) => {
      const skips = new SkipLog();
      const lines: string[] = [];
      const files = new RetiredFiles({ after: 2 });
      const stream = positionedBatches({
        config: c(follow),
        model: runModelConfig(c(follow), 64),
        vocab: new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>"]),
        skips,
        retirement: new RetirementWatch(files),
        log: (line) => lines.push(line),
        followPollMs: 50,
        signal,
      });
      return { skips, lines, files, stream };
    };

    const once = run(false);
    let batches = 0;
    for await (const _ of once.stream) batches++;
    assert.equal(batches, 0);
    assert.deepEqual(
      once.files
        .entries()
        .map((e) => e.file)
        .sort(),
      broken,
    );
    const key = decodeKey(once.skips.tallies())!;
    assert.deepEqual(once.skips.tallies()[key], {
      count: 6,
      items: 3,
      passes: { min: 2, max: 2 },
      unit: "file",
    });
    assert.match(once.lines.join("\n"), /every file of pass 2 is retired/);

    const stop = new AbortController();
    const followed = run(true, stop.signal);
    const reading = (async () => {
      for await (const _ of followed.stream) batches++;
    })();
    const deadline = Date.now() + 30_000;
    while (!followed.lines.some((l) => /waiting for the dataset to change/.test(l)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(followed.lines.length > 0, "says that it waits");
    const read = followed.skips.count;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(followed.skips.count, read, "no pass read (the bad row would be met again) while waiting");
    stop.abort();
    await reading;
    assert.equal(batches, 0);
  });
});
