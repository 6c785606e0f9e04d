/**
 * The training sink: pulls batches at the model's pace, runs the VATT step (forward, NCE + MIL-NCE, gradients,
 * optimiser), accounts time spent waiting for data against time computing, writes metrics, checkpoints every N
 * steps and when asked to stop, and never lets one bad batch end the run.
 *
 * Pull, not push: the next batch is asked for only after the step on the previous one is done, so the pipeline
 * upstream never runs further ahead than its own bounds.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../core/records.js";
import type { SkipLog } from "../core/skips.js";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import type { Optimizer } from "../model/optim.js";
import { type StepResult, trainStep } from "../model/step.js";
import type { VattModel } from "../model/vatt.js";
import { CheckpointWriteError, latestCheckpoint, saveCheckpointFolder } from "./checkpoints.js";
import { type MetricsLog, ProgressLine, progressLine, type StepMetrics } from "./metrics.js";

/** A batch and where the data stream stands after it (saved with checkpoints for an exact resume). */
export interface PositionedBatch {
  batch: Batch;
  position: unknown;
}

export interface TrainLoopOptions {
  runDir: string;
  model: VattModel;
  optimizer: Optimizer;
  data: AsyncIterable<PositionedBatch>;
  /** Stop after this many optimiser steps in total (resumed runs count their earlier steps). */
  steps: number;
  seed: number;
  lambda: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  logEvery: number;
  skips: SkipLog;
  metrics: MetricsLog;
  /** Data position at the start (a resumed run's), saved if a checkpoint happens before any batch. */
  startPosition?: unknown;
  /** Aborting stops the run after the current step, with a checkpoint. */
  stop?: AbortSignal;
  /** Called every `evalEvery` steps (0 = never during the run). */
  evalEvery?: number;
  evaluate?: (step: number) => Promise<void>;
  /** Extra JSON stored with each checkpoint (e.g. the effective config). */
  checkpointExtra?: Record<string, unknown>;
  /**
   * State of the data stream beyond its position, taken when a checkpoint is written and stored beside the
   * position (`position.json`'s "dataState"; read back with `lastCheckpointDataState`), e.g. which files are
   * retired and the bookkeeping of the pass in progress.
   */
  checkpointDataState?: () => unknown;
  progress?: ProgressLine;
  /** Called after every step (tests, benchmarks). */
  onStep?: (m: StepMetrics) => void;
  /**
   * Told after every step how long the loop waited for its batch and how long the step computed, in seconds (the
   * thread governor of model/fast/thread-governor.ts decides from these whether the second core pays).
   */
  onStepTimes?: (step: number, waitedSeconds: number, computeSeconds: number) => void;
  /** The native threads the step ran on, logged with each metrics line. */
  threads?: () => number;
  /**
   * The optimisation step on one batch (default: VATT's NCE + MIL-NCE `trainStep`). Fine-tuning passes its own;
   * a step without NCE / MIL-NCE parts reports them as NaN.
   */
  step?: (batch: Batch) => StepResult;
}

export interface TrainSummary {
  /** Optimiser steps done when the loop ended. */
  step: number;
  stepsThisRun: number;
  skippedSteps: number;
  skippedExamples: number;
  examples: number;
  seconds: number;
  dataWaitSeconds: number;
  computeSeconds: number;
  /** Why the loop ended. */
  ended: "steps" | "stopped" | "data-exhausted";
  lastCheckpoint?: string;
  losses: { step: number; loss: number; nce: number; milNce: number; lr: number }[];
}

/** The files of one checkpoint folder: model + optimiser as safetensors (with its JSON), and the data position. */
/**
 * Loads the run's last checkpoint (weights and optimiser state) into `model` and `optimizer` and returns where the
 * data stream stood, the reverse of `writeTrainingCheckpoint`. The caller has checked that one exists.
 */
export async function resumeFromLastCheckpoint<P>(
  runDir: string,
  model: VattModel,
  optimizer: Optimizer,
): Promise<P> {
  const last = (await latestCheckpoint(runDir))!;
  await loadCheckpoint(join(last.dir, "model.safetensors"), model, optimizer);
  return (JSON.parse(await readFile(join(last.dir, "position.json"), "utf8")) as { position: P }).position;
}

/** The data stream's state saved with the run's last checkpoint (see `checkpointDataState`), if any. */
export async function lastCheckpointDataState(runDir: string): Promise<unknown> {
  const last = await latestCheckpoint(runDir);
  if (!last) return undefined;
  return (JSON.parse(await readFile(join(last.dir, "position.json"), "utf8")) as { dataState?: unknown })
    .dataState;
}

export async function writeTrainingCheckpoint(
  dir: string,
  model: VattModel,
  optimizer: Optimizer,
  position: unknown,
  extra: Record<string, unknown>,
  dataState?: unknown,
): Promise<void> {
  await saveCheckpoint(join(dir, "model.safetensors"), model, optimizer, { ...extra, position });
  const record = { step: optimizer.step, position, ...(dataState !== undefined ? { dataState } : {}) };
  await writeFile(join(dir, "position.json"), `${JSON.stringify(record)}\n`);
}

export async function runTrainingLoop(o: TrainLoopOptions): Promise<TrainSummary> {
  const started = performance.now();
  const progress = o.progress ?? new ProgressLine();
  const summary: TrainSummary = {
    step: o.optimizer.step,
    stepsThisRun: 0,
    skippedSteps: 0,
    skippedExamples: 0,
    examples: 0,
    seconds: 0,
    dataWaitSeconds: 0,
    computeSeconds: 0,
    ended: "steps",
    losses: [],
  };
  let position = o.startPosition;
  let savedStep = -1;
  const checkpoint = async (): Promise<void> => {
    if (savedStep === o.optimizer.step) return;
    const step = o.optimizer.step;
    try {
      summary.lastCheckpoint = await saveCheckpointFolder(o.runDir, step, o.keepCheckpoints, (dir) =>
        writeTrainingCheckpoint(
          dir,
          o.model,
          o.optimizer,
          position,
          o.checkpointExtra ?? {},
          o.checkpointDataState?.(),
        ),
      );
      savedStep = step;
      o.metrics.write({ event: "checkpoint", step, dir: summary.lastCheckpoint });
    } catch (err) {
      if (!(err instanceof CheckpointWriteError)) throw err;
      progress.done();
      console.error(`vatt: ${err.message}`);
      o.metrics.write({ event: "checkpoint-failed", step, message: err.message });
    }
  };

  // Window over which examples/s and the data-wait share are measured: since the last metrics line.
  let windowStart = performance.now();
  let windowWait = 0;
  let windowExamples = 0;
  let loggedSkips = 0;
  const iterator = o.data[Symbol.asyncIterator]();
  try {
    while (o.optimizer.step < o.steps) {
      if (o.stop?.aborted) {
        summary.ended = "stopped";
        break;
      }
      const waitStart = performance.now();
      const next = await iterator.next();
      const waited = (performance.now() - waitStart) / 1000;
      summary.dataWaitSeconds += waited;
      windowWait += waited;
      if (next.done) {
        summary.ended = "data-exhausted";
        break;
      }
      const { batch } = next.value;
      const computeStart = performance.now();
      const r = o.step
        ? o.step(batch)
        : trainStep(o.model, o.optimizer, batch, { seed: o.seed, lambda: o.lambda });
      const computed = (performance.now() - computeStart) / 1000;
      summary.computeSeconds += computed;
      o.onStepTimes?.(o.optimizer.step, waited, computed);
      position = next.value.position;
      summary.examples += batch.size;
      windowExamples += batch.size;
      if (r.skipped) {
        summary.skippedSteps += 1;
        o.metrics.write({
          event: "skipped-step",
          step: r.step,
          reason: "non-finite loss",
          loss: String(r.loss),
          ids: batch.ids,
        });
        progress.done();
        console.error(
          `vatt: step ${r.step + 1} skipped: the loss was ${r.loss} (batch ids: ${batch.ids.slice(0, 4).join(", ")}, ...)`,
        );
        continue;
      }
      summary.stepsThisRun += 1;
      summary.losses.push({ step: o.optimizer.step, loss: r.loss, nce: r.nce, milNce: r.milNce, lr: r.lr });
      const step = o.optimizer.step;
      if (step % o.logEvery === 0 || step === o.steps) {
        const now = performance.now();
        const windowSeconds = Math.max(1e-9, (now - windowStart) / 1000);
        const m: StepMetrics = {
          step,
          loss: r.loss,
          nce: r.nce,
          milNce: r.milNce,
          lr: r.lr,
          gradNorm: r.gradNorm,
          examplesPerSecond: windowExamples / windowSeconds,
          dataWaitShare: Math.min(1, windowWait / windowSeconds),
          skippedExamples: o.skips.count,
          skippedSteps: summary.skippedSteps,
          elapsedSeconds: (now - started) / 1000,
        };
        o.metrics.write({
          event: "step",
          ...m,
          tensors: tf.memory().numTensors,
          ...(o.threads ? { threads: o.threads() } : {}),
          rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
          // The skips so far by where:reason, whenever they changed: a run killed before its "end" line (SIGKILL,
          // a crash) still leaves why it skipped what it skipped.
          ...(o.skips.count !== loggedSkips ? { skips: o.skips.byReason() } : {}),
        });
        loggedSkips = o.skips.count;
        const secondsPerStep = m.elapsedSeconds / Math.max(1, summary.stepsThisRun);
        progress.update(progressLine(m, o.steps, secondsPerStep));
        o.onStep?.(m);
        windowStart = now;
        windowWait = 0;
        windowExamples = 0;
      }
      if (step % o.checkpointEvery === 0) await checkpoint();
      if (o.evalEvery && o.evaluate && step % o.evalEvery === 0 && step < o.steps) {
        progress.done();
        await o.evaluate(step);
      }
    }
  } finally {
    // Ends the data pipeline: in-flight decodes are cancelled and their processes killed.
    await iterator.return?.();
  }
  await checkpoint();
  progress.done();
  summary.step = o.optimizer.step;
  summary.skippedExamples = o.skips.count;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
