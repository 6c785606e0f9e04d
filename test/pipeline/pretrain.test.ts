import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SkipLog } from "../../core/skips.js";
import { synthesizeDataset } from "../../datasets/synth.js";
import { Vocabulary } from "../../operators/tokenize.js";
import { resolveConfig } from "../../pipeline/config.js";
import { runPretraining } from "../../pipeline/pretrain.js";
import { positionedBatches, runModelConfig } from "../../pipeline/pretrain-data.js";

const VATT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "vatt.js");
const small = { width: 96, height: 64, fps: 10, minSeconds: 6, maxSeconds: 10 } as const;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-pretrain-"));
  await synthesizeDataset({ kind: "howto100m", out: join(dir, "howto"), videos: 4, seed: 3, ...small });
  await synthesizeDataset({ kind: "audioset", out: join(dir, "as"), videos: 4, seed: 4, ...small });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function config(runDir: string, steps: number) {
  return resolveConfig({
    runDir: join(dir, runDir),
    seed: 11,
    data: { howto100m: join(dir, "howto"), audioset: join(dir, "as"), heldOutShare: 0, decodeShortSide: 64 },
    train: { steps, batchSize: 4, warmupSteps: 1, checkpointEvery: 2, evalEvery: 0 },
  });
}

async function stepLosses(runDir: string): Promise<Map<number, number>> {
  const lines = (await readFile(join(dir, runDir, "metrics.jsonl"), "utf8")).trim().split("\n");
  const steps = lines.map((l) => JSON.parse(l)).filter((r) => r.event === "step");
  return new Map(steps.map((s) => [s.step, s.loss]));
}

describe("pretraining run", () => {
  it("resumed from a checkpoint, gives the same losses as a run that never stopped", async () => {
    const quiet = { log: () => {}, skipFinalEval: true };
    const straight = await runPretraining(config("straight", 4), quiet);
    assert.equal(straight.summary.step, 4);
    const first = await runPretraining(config("resumed", 2), quiet);
    assert.equal(first.summary.step, 2);
    const second = await runPretraining(config("resumed", 4), { ...quiet, resume: true });
    assert.equal(second.summary.stepsThisRun, 2);
    const a = await stepLosses("straight");
    const b = await stepLosses("resumed");
    for (const step of [1, 2, 3, 4]) {
      assert.ok(Number.isFinite(a.get(step)), `step ${step} logged`);
      assert.ok(
        Math.abs(a.get(step)! - b.get(step)!) < 1e-4,
        `step ${step}: ${a.get(step)} vs ${b.get(step)}`,
      );
    }
    const saved = JSON.parse(await readFile(join(dir, "resumed", "config.json"), "utf8"));
    assert.equal(saved.train.batchSize, 4, "the effective config is saved in the run directory");
    assert.deepEqual(
      straight.files.plots.map((p) => p.split("/").at(-1)),
      ["loss.png", "lr.png"],
    );
  });

  it("refuses to overwrite a run, and to resume one that has no checkpoint", async () => {
    await assert.rejects(
      runPretraining(config("straight", 4), { log: () => {} }),
      /already holds checkpoints.*--resume/,
    );
    await assert.rejects(
      runPretraining(config("never-started", 4), { log: () => {}, resume: true }),
      /nothing to resume: run directory '.*never-started' has no checkpoint/,
    );
  });

  it("with --follow, waits for data and picks up a video added while it runs", async () => {
    const root = join(dir, "growing");
    await cp(join(dir, "howto"), root, { recursive: true });
    const captions = JSON.parse(await readFile(join(root, "caption.json"), "utf8"));
    const csv = (await readFile(join(root, "HowTo100M_v1.csv"), "utf8")).trim().split("\n");
    const [header, firstRow, ...laterRows] = csv;
    const firstId = firstRow.split(",")[0];
    const newId = laterRows[0].split(",")[0];
    // Start with one video listed; the second one's file is there but not yet in the lists.
    await writeFile(join(root, "HowTo100M_v1.csv"), `${header}\n${firstRow}\n`);
    await writeFile(join(root, "caption.json"), JSON.stringify({ [firstId]: captions[firstId] }));
    const c = resolveConfig({
      data: { howto100m: root, follow: true, heldOutShare: 0, decodeShortSide: 64 },
      train: { batchSize: 2 },
    });
    const model = runModelConfig(c, 64);
    const vocab = new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "tomato"]);
    const stop = new AbortController();
    const stream = positionedBatches({
      config: c,
      model,
      vocab,
      skips: new SkipLog(),
      followPollMs: 100,
      signal: stop.signal,
    });
    const seen = new Set<string>();
    let batches = 0;
    const deadline = Date.now() + 60_000;
    for await (const { batch } of stream) {
      for (const id of batch.ids) seen.add(id);
      if (++batches === 2) {
        await writeFile(
          join(root, "caption.json"),
          JSON.stringify({ [firstId]: captions[firstId], [newId]: captions[newId] }),
        );
        await writeFile(join(root, "HowTo100M_v1.csv"), `${header}\n${firstRow}\n${laterRows[0]}\n`);
      }
      if (seen.has(newId) || Date.now() > deadline) break;
    }
    stop.abort();
    assert.ok(seen.has(firstId));
    assert.ok(seen.has(newId), `the added video ${newId} was trained on (saw ${[...seen].join(", ")})`);
  });
});

describe("vatt pretrain (command line)", () => {
  function vatt(...args: string[]) {
    return spawnSync(process.execPath, [VATT, "pretrain", ...args], { encoding: "utf8", timeout: 60_000 });
  }

  it("names the config key at fault, in one line, with exit code 2", () => {
    const r = vatt(
      "--howto100m",
      join(dir, "howto"),
      "--set",
      "train.stpes=3",
      "--run-dir",
      join(dir, "cli"),
    );
    assert.equal(r.status, 2);
    assert.match(
      r.stderr.trim(),
      /^vatt pretrain: unknown config key 'train\.stpes'\. Did you mean 'steps'\?/,
    );
    const bad = vatt("--howto100m", join(dir, "howto"), "--batch-size", "0", "--run-dir", join(dir, "cli"));
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /config key 'train\.batchSize' must be >= 2, got 0/);
    const none = vatt("--run-dir", join(dir, "cli"));
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no dataset: set data\.howto100m, data\.audioset or data\.parquet/);
    const file = vatt("--config", join(dir, "missing.yaml"));
    assert.equal(file.status, 2);
    assert.match(file.stderr, /cannot read config file '.*missing\.yaml'/);
  });

  it("resumes a run from its saved config with only --resume and --run-dir", () => {
    const runDir = join(dir, "cli-resume");
    const first = vatt(
      ...["--howto100m", join(dir, "howto"), "--run-dir", runDir, "--steps", "2", "--batch-size", "2"],
      ...["--set", "data.heldOutShare=0", "--set", "data.decodeShortSide=64", "--set", "train.warmupSteps=0"],
    );
    assert.equal(first.status, 0, first.stderr);
    const again = vatt("--resume", "--run-dir", runDir, "--steps", "3");
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /resumed .*cli-resume at step 2/);
    assert.match(again.stdout, /steps: 3 \(1 this run/);
  });

  it("on SIGINT stops after the current step with a checkpoint, and exits cleanly", async () => {
    const runDir = join(dir, "cli-sigint");
    const child = spawn(
      process.execPath,
      [
        VATT,
        "pretrain",
        ...["--howto100m", join(dir, "howto"), "--run-dir", runDir, "--steps", "100000", "--batch-size", "2"],
        ...[
          "--set",
          "data.heldOutShare=0",
          "--set",
          "data.decodeShortSide=64",
          "--set",
          "train.checkpointEvery=100000",
        ],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    // Wait until a few steps are logged, then interrupt.
    const metrics = join(runDir, "metrics.jsonl");
    const deadline = Date.now() + 60_000;
    for (;;) {
      const text = await readFile(metrics, "utf8").catch(() => "");
      if ((text.match(/"event":"step"/g) ?? []).length >= 3 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SIGINT: stopping after this step and writing a checkpoint/);
    const steps = (await readFile(metrics, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const lastStep = steps.filter((r) => r.event === "step").at(-1).step;
    const checkpoints = await readdir(join(runDir, "checkpoints"));
    assert.deepEqual(
      checkpoints,
      [`step-${String(lastStep).padStart(9, "0")}`],
      "a checkpoint of the step it stopped at",
    );
    assert.ok(steps.some((r) => r.event === "end" && r.ended === "stopped"));
  });

  it("lists every config key", () => {
    const r = vatt("--help-config");
    assert.equal(r.status, 0);
    assert.match(r.stdout, /train\.steps\s+300/);
    assert.match(r.stdout, /augment\.minArea/);
  });
});
