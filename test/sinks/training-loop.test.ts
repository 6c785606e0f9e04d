import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { SkipLog } from "../../core/skips.js";
import { loadCheckpoint } from "../../model/checkpoint.js";
import {
  createOptimizer,
  disposeOptimizer,
  type Optimizer,
  pretrainingOptimizer,
} from "../../model/optim.js";
import { createModel, disposeModel, type VattModel } from "../../model/vatt.js";
import { latestCheckpoint, listCheckpoints, saveCheckpointFolder } from "../../sinks/checkpoints.js";
import { MetricsLog } from "../../sinks/metrics.js";
import { type PositionedBatch, runTrainingLoop } from "../../sinks/training-loop.js";
import { syntheticBatch, testBackend, tinyTestConfig } from "../model/helpers.js";

const config = tinyTestConfig({
  videoGeometry: { frames: 4, height: 32, width: 32, patchFrames: 4, patchHeight: 16, patchWidth: 16 },
  audioGeometry: { samples: 1024, patch: 128 },
  textConfig: { vocabSize: 64 },
});

/** A deterministic stream of batches starting at `from`: batch n is made from seed n, position = next n. */
async function* batchesFrom(from: number, poison?: number): AsyncGenerator<PositionedBatch> {
  for (let n = from; ; n++) {
    const batch = syntheticBatch(config, 4, 2, 100 + n);
    if (n === poison) batch.video.fill(Number.NaN);
    yield { batch, position: { next: n + 1 } };
  }
}

let dir: string;
before(async () => {
  await testBackend();
  dir = await mkdtemp(join(tmpdir(), "vatt-train-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fresh(): { model: VattModel; optimizer: Optimizer } {
  const model = createModel(config, 5);
  const optimizer = createOptimizer(
    pretrainingOptimizer({ lr: 1e-3, finalLr: 1e-4, warmupSteps: 2, totalSteps: 8 }),
    model.params,
  );
  return { model, optimizer };
}

async function train(runDir: string, steps: number, from = 0, setup = fresh(), poison?: number) {
  await mkdir(runDir, { recursive: true });
  const summary = await runTrainingLoop({
    runDir,
    ...setup,
    data: batchesFrom(from, poison),
    steps,
    seed: 9,
    lambda: 1,
    checkpointEvery: 3,
    keepCheckpoints: 2,
    logEvery: 1,
    skips: new SkipLog(),
    metrics: new MetricsLog(join(runDir, "metrics.jsonl")),
  });
  return { summary, ...setup };
}

describe("training loop", () => {
  it("step lines carry the skips by where:reason whenever they changed", async () => {
    const runDir = join(dir, "skips-in-steps");
    await mkdir(runDir, { recursive: true });
    const skips = new SkipLog();
    async function* skipping(): AsyncGenerator<PositionedBatch> {
      for await (const b of batchesFrom(0)) {
        const n = (b.position as { next: number }).next;
        if (n === 2) skips.record("decode", "corrupt", "clips/a.mp4: corrupt", { item: "clips/a.mp4" });
        yield b;
      }
    }
    const setup = fresh();
    await runTrainingLoop({
      runDir,
      ...setup,
      data: skipping(),
      steps: 4,
      seed: 9,
      lambda: 1,
      checkpointEvery: 100,
      keepCheckpoints: 1,
      logEvery: 1,
      skips,
      metrics: new MetricsLog(join(runDir, "metrics.jsonl"), { tensorboard: false }),
    });
    disposeModel(setup.model);
    disposeOptimizer(setup.optimizer);
    const lines = (await readFile(join(runDir, "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((l) => l.event === "step");
    assert.deepEqual(
      lines.map((l) => l.skips),
      [undefined, { "decode:corrupt": 1 }, undefined, undefined],
    );
  });

  it("resumes exactly: the same losses as a run that never stopped", async () => {
    const straight = await train(join(dir, "straight"), 6);
    const first = await train(join(dir, "resumed"), 3);
    disposeModel(first.model);
    disposeOptimizer(first.optimizer);
    const ckpt = await latestCheckpoint(join(dir, "resumed"));
    assert.equal(ckpt?.step, 3);
    const position = JSON.parse(await readFile(join(ckpt!.dir, "position.json"), "utf8"));
    assert.deepEqual(position, { step: 3, position: { next: 3 } });
    const setup = fresh();
    await loadCheckpoint(join(ckpt!.dir, "model.safetensors"), setup.model, setup.optimizer);
    assert.equal(setup.optimizer.step, 3);
    const second = await train(join(dir, "resumed"), 6, position.position.next, setup);
    const tail = straight.summary.losses.slice(3);
    assert.equal(second.summary.losses.length, 3);
    for (let i = 0; i < 3; i++) {
      assert.equal(second.summary.losses[i].step, tail[i].step);
      assert.ok(
        Math.abs(second.summary.losses[i].loss - tail[i].loss) < 1e-5,
        `${second.summary.losses[i].loss} vs ${tail[i].loss}`,
      );
    }
    // Learning itself is tested on a fixed batch (test/model/train.test.ts): these batches differ every step.
    // keep = 2: steps 3 and 6 remain.
    assert.deepEqual(
      (await listCheckpoints(join(dir, "resumed"))).map((c) => c.step),
      [3, 6],
    );
    for (const s of [straight, second]) {
      disposeModel(s.model);
      disposeOptimizer(s.optimizer);
    }
  });

  it("skips a step whose loss is not finite and reports it", async () => {
    const tensorsBefore = tf.memory().numTensors;
    const run = await train(join(dir, "nan"), 3, 0, fresh(), 1);
    assert.equal(run.summary.skippedSteps, 1);
    assert.equal(run.summary.step, 3);
    const lines = (await readFile(join(dir, "nan", "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.event === "skipped-step" && l.reason === "non-finite loss"));
    assert.ok(lines.filter((l) => l.event === "step").every((l) => Number.isFinite(l.loss)));
    disposeModel(run.model);
    disposeOptimizer(run.optimizer);
    assert.equal(tf.memory().numTensors, tensorsBefore, "no tensors leaked over the run");
  });

  it("keeps the last good checkpoint when a write fails, and goes on", async () => {
    const runDir = join(dir, "fail");
    await mkdir(runDir, { recursive: true });
    await saveCheckpointFolder(runDir, 1, 3, async (d) => writeFile(join(d, "x"), "good"));
    await assert.rejects(
      saveCheckpointFolder(runDir, 2, 3, async () => {
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      }),
      /could not write the checkpoint of step 2 .*the disk is full\. The previous checkpoint is intact/,
    );
    assert.equal((await latestCheckpoint(runDir))?.step, 1);
    assert.deepEqual(
      await readdir(join(runDir, "checkpoints")),
      ["step-000000001"],
      "no partial folder left",
    );
  });

  it("leaves the previous checkpoint loadable when killed with SIGKILL mid-write", async () => {
    const runDir = join(dir, "killed");
    await mkdir(runDir, { recursive: true });
    const first = await train(runDir, 3);
    disposeModel(first.model);
    disposeOptimizer(first.optimizer);
    // A child process that starts writing checkpoint 9 slowly, forever; we kill it in the middle.
    const script = join(dir, "slow-writer.mjs");
    const sinks = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "sinks", "checkpoints.js");
    await writeFile(
      script,
      `import { saveCheckpointFolder } from ${JSON.stringify(sinks)};
       import { open } from "node:fs/promises";
       await saveCheckpointFolder(${JSON.stringify(runDir)}, 9, 2, async (d) => {
         const f = await open(d + "/model.safetensors", "w");
         process.stdout.write("writing\\n");
         for (;;) { await f.write(Buffer.alloc(1 << 16, 7)); await new Promise((r) => setTimeout(r, 5)); }
       });`,
    );
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => child.stdout.once("data", () => setTimeout(resolve, 100)));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const latest = await latestCheckpoint(runDir);
    assert.equal(latest?.step, 3, "the killed write never looks finished");
    const setup = fresh();
    await loadCheckpoint(join(latest!.dir, "model.safetensors"), setup.model, setup.optimizer);
    assert.equal(setup.optimizer.step, 3);
    disposeModel(setup.model);
    disposeOptimizer(setup.optimizer);
    // The next successful save removes the dead process's partial folder.
    await saveCheckpointFolder(runDir, 10, 2, async (d) => writeFile(join(d, "x"), "ok"));
    assert.deepEqual((await readdir(join(runDir, "checkpoints"))).sort(), [
      "step-000000003",
      "step-000000010",
    ]);
  });
});
