/**
 * A real pretraining run, stopped and resumed, writes TensorBoard event files beside metrics.jsonl that hold every
 * step and eval figure of it, read back by the independent reader (test/sinks/tfevents-reader.ts).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { synthesizeDataset } from "../../datasets/synth.js";
import { resolveConfig } from "../../pipeline/config.js";
import { runPretraining } from "../../pipeline/pretrain.js";
import { eventFiles, readEventFile, scalarTable } from "../sinks/tfevents-reader.js";

const small = { width: 96, height: 64, fps: 10, minSeconds: 4, maxSeconds: 5 } as const;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-tensorboard-run-"));
  await synthesizeDataset({ kind: "howto100m", out: join(dir, "howto"), videos: 2, seed: 3, ...small });
  await synthesizeDataset({ kind: "audioset", out: join(dir, "as"), videos: 2, seed: 4, ...small });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function config(steps: number) {
  return resolveConfig({
    runDir: join(dir, "run"),
    seed: 5,
    data: {
      howto100m: join(dir, "howto"),
      audioset: join(dir, "as"),
      heldOutShare: 0.5,
      decodeShortSide: 64,
    },
    train: { steps, batchSize: 2, warmupSteps: 1, checkpointEvery: 1, evalEvery: 0 },
    eval: { windows: 1 },
  });
}

describe("a pretraining run in TensorBoard", () => {
  it("holds every step and eval figure of metrics.jsonl, across a resume", async () => {
    const quiet = { log: () => {} };
    await runPretraining(config(1), quiet);
    await runPretraining(config(2), { ...quiet, resume: true });
    const runDir = join(dir, "run");
    const files = await eventFiles(runDir);
    assert.equal(files.length, 2, `one event file per process: ${files.join(", ")}`);
    const events = (await Promise.all(files.map((f) => readEventFile(join(runDir, f))))).flat();
    const table = scalarTable(events);

    const lines = (await readFile(join(runDir, "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.event === "step");
    assert.deepEqual(
      steps.map((l) => l.step),
      [1, 2],
    );
    for (const l of steps) {
      for (const [key, tag] of [
        ["loss", "train/loss"],
        ["nce", "train/nce"],
        ["milNce", "train/milNce"],
        ["lr", "train/lr"],
        ["examplesPerSecond", "speed/examplesPerSecond"],
      ]) {
        assert.equal(table.get(tag)?.get(l.step)?.value, Math.fround(l[key]), `${tag} at step ${l.step}`);
      }
    }
    const evals = lines.filter((l) => l.event === "eval");
    assert.equal(evals.length, 2, "a final evaluation per process");
    for (const e of evals) {
      for (const direction of ["textToVideo", "videoToAudio", "audioToVideo"]) {
        assert.ok(e[direction], `the eval line has ${direction} figures`);
        assert.equal(
          table.get(`eval/${direction}/R@1`)?.get(e.step)?.value,
          Math.fround(e[direction]["R@1"]),
        );
        assert.equal(
          table.get(`eval-chance/${direction}/R@10`)?.get(e.step)?.value,
          Math.fround(e[direction].chance["R@10"]),
        );
      }
      assert.equal(table.get("eval/seconds")?.get(e.step)?.value, Math.fround(e.seconds));
    }
    // Each process's first scalars follow a session start at their step.
    assert.deepEqual(
      events.filter((e) => e.sessionStatus === 1).map((e) => e.step),
      [1, 2],
    );
  });
});
