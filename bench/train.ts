/**
 * Bench: a 500-step tiny pretraining run on synthetic data, end to end (decode, augment, model step,
 * checkpoints). Reports examples/s, the share of time the model waited for data, and RSS and live tensors near
 * the start and at the end: both must stay flat over a long run.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { synthesizeDataset } from "../datasets/synth.js";
import { resolveConfig } from "../pipeline/config.js";
import { runPretraining } from "../pipeline/pretrain.js";

export async function benchTrain(opts: { json: boolean; steps?: number }): Promise<Record<string, unknown>> {
  const steps = opts.steps ?? 500;
  const dir = await mkdtemp(join(tmpdir(), "vatt-bench-train-"));
  const log = (line: string) => {
    if (!opts.json) process.stderr.write(`${line}\n`);
  };
  try {
    const small = { width: 160, height: 120, seed: 1 } as const;
    await synthesizeDataset({
      kind: "howto100m",
      out: join(dir, "howto"),
      videos: 16,
      minSeconds: 20,
      maxSeconds: 30,
      ...small,
    });
    await synthesizeDataset({ kind: "audioset", out: join(dir, "as"), videos: 16, ...small });
    const config = resolveConfig({
      runDir: join(dir, "run"),
      data: { howto100m: join(dir, "howto"), audioset: join(dir, "as"), heldOutShare: 0 },
      train: { steps, batchSize: 8, warmupSteps: 20, checkpointEvery: 100, logEvery: 10 },
    });
    const result = await runPretraining(config, { log, skipFinalEval: true });
    const records = (await readFile(join(dir, "run", "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number | string>)
      .filter((r) => r.event === "step");
    // The first lines include warm-up (wasm compile, first allocations); "start" is the 5th line (step 50).
    const early = records[Math.min(4, records.length - 1)];
    const last = records[records.length - 1];
    const s = result.summary;
    return {
      bench: "train",
      steps: s.step,
      batchSize: 8,
      examples: s.examples,
      seconds: Math.round(s.seconds * 10) / 10,
      examplesPerSecond: Math.round((s.examples / s.seconds) * 10) / 10,
      dataWaitShare: Math.round((s.dataWaitSeconds / s.seconds) * 1000) / 1000,
      computeShare: Math.round((s.computeSeconds / s.seconds) * 1000) / 1000,
      rssMB: { start: early.rssMB, end: last.rssMB, atStep: [early.step, last.step] },
      tensors: { start: early.tensors, end: last.tensors },
      peakRssMB: Math.round((process.resourceUsage().maxRSS * 1024) / 2 ** 20),
      skippedExamples: s.skippedExamples,
      backend: result.backend.name,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
