/**
 * A whole pretraining run, as `vatt pretrain` and `vatt demo` start it: run directory, backend, vocabulary, model
 * and optimiser (fresh or resumed from the last checkpoint), the streaming data, the training loop, evaluation
 * during and after training, plots. Everything a run writes lands in its run directory:
 *
 *   config.json      the effective configuration         metrics.jsonl   one JSON line per step / event
 *   vocab.txt        the vocabulary (when built here)    eval.json       the latest retrieval figures (+ evals.jsonl)
 *   checkpoints/     step-NNNNNNNNN/ folders             loss.png, lr.png
 *   retired-files.json   videos no longer asked for (they failed pass after pass), when there are any
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";
import type { StreamPosition } from "../core/order.js";
import { type RetiredFile, RetiredFiles, retireAtOnce } from "../core/retired.js";
import { SkipLog, type SkipTally } from "../core/skips.js";
import { libavStatus } from "../media/libav-pool.js";
import { type BackendChoice, type BackendInfo, selectBackend, threadGovernorFor } from "../model/backend.js";
import { paramCounts, wasmTrainingMemoryProblem } from "../model/info.js";
import { createOptimizer, disposeOptimizer, pretrainingOptimizer } from "../model/optim.js";
import { createModel, disposeModel } from "../model/vatt.js";
import type { DecodeOptions } from "../operators/decode.js";
import { listCheckpoints } from "../sinks/checkpoints.js";
import { MetricsLog } from "../sinks/metrics.js";
import { writeLineChartPng } from "../sinks/plots.js";
import {
  lastCheckpointDataState,
  resumeFromLastCheckpoint,
  runTrainingLoop,
  type TrainSummary,
} from "../sinks/training-loop.js";
import type { PretrainConfig } from "./config.js";
import { describeEval, type EvalReport, evaluateRetrieval, writeEvalReport } from "./evaluate.js";
import {
  decodeOptionsFor,
  type EvalItem,
  evaluationItems,
  positionedBatches,
  runModelConfig,
  runVocabulary,
} from "./pretrain-data.js";
import { RetirementWatch, readRetiredFiles, retiredFilesPath } from "./retirement.js";

export interface PretrainRunOptions {
  /** Continue from the run directory's last checkpoint. */
  resume?: boolean;
  /** Stops the run after the current step, with a checkpoint (SIGINT/SIGTERM are wired to it by the CLI). */
  stop?: AbortSignal;
  /** Where progress notes go (default: stderr). */
  log?: (line: string) => void;
  /** Skip the final evaluation. */
  skipFinalEval?: boolean;
}

export interface PretrainResult {
  runDir: string;
  backend: BackendInfo;
  summary: TrainSummary;
  eval?: EvalReport;
  /** Skips by "where:reason" (each time an item was met). */
  skips: Record<string, number>;
  /** The same keys: distinct items and the passes they were seen in. */
  skipTallies: Record<string, SkipTally>;
  /** Files no longer asked for: why, the passes they failed in (also in `RUN/retired-files.json`). */
  retired: RetiredFile[];
  files: {
    metrics: string;
    config: string;
    eval?: string;
    plots: string[];
    checkpoint?: string;
    retired?: string;
  };
}

/** A failure of the run itself (not of one example): one sentence naming the thing and what to do. */
export class RunError extends Error {
  override name = "RunError";
}

async function checkRunDir(runDir: string, resume: boolean): Promise<void> {
  try {
    await mkdir(runDir, { recursive: true });
    const probe = join(runDir, `.write-test-${process.pid}`);
    await writeFile(probe, "");
    await rm(probe);
  } catch (err) {
    throw new RunError(
      `run directory '${runDir}' is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ` +
        "choose another with --run-dir",
    );
  }
  const checkpoints = await listCheckpoints(runDir);
  if (!resume && checkpoints.length > 0) {
    throw new RunError(
      `run directory '${runDir}' already holds checkpoints (last: step ${checkpoints.at(-1)?.step}): ` +
        "continue it with --resume, or start a new run with another --run-dir",
    );
  }
  if (resume && checkpoints.length === 0) {
    throw new RunError(
      `nothing to resume: run directory '${runDir}' has no checkpoint yet; start it without --resume`,
    );
  }
}

/** Which decoder the run uses, for its first lines; a RunError when the one asked for cannot run here. */
async function describeDecoder(
  decoder: DecodeOptions["decoder"],
  isolation: DecodeOptions["isolation"],
): Promise<string> {
  if (decoder === "process") return "decoding clips with one ffmpeg process each (data.decoder: process)";
  const status = await libavStatus();
  if (status.available) {
    return isolation === "process"
      ? "decoding clips with FFmpeg's libraries in worker processes (data.decoder: libav)"
      : "decoding clips with FFmpeg's libraries in worker threads (data.decoderIsolation: thread)";
  }
  if (decoder === "libav") {
    throw new RunError(
      `data.decoder is 'libav' but ${status.reason}: set data.decoder to 'process' or 'auto'`,
    );
  }
  return `decoding clips with one ffmpeg process each (${status.reason})`;
}

/**
 * The curves at the end of a run, or none when they cannot be written (a full disk): the run's work is in its
 * checkpoint and metrics.jsonl by then, and a picture of it must not turn the run into a failure.
 */
export async function writeRunPlots(runDir: string, log: (line: string) => void): Promise<string[]> {
  try {
    return await writePlots(runDir);
  } catch (err) {
    log(
      `vatt: could not write the loss and learning-rate plots in '${runDir}' ` +
        `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); metrics.jsonl has the numbers`,
    );
    return [];
  }
}

/** Loss and learning-rate curves from metrics.jsonl (the whole history, resumed parts included). */
async function writePlots(runDir: string): Promise<string[]> {
  const lines = (await readFile(join(runDir, "metrics.jsonl"), "utf8"))
    .split("\n")
    .filter((l) => l.length > 0);
  const steps = lines
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return undefined; // a line cut short by a crash
      }
    })
    .filter((r): r is Record<string, number> => r?.event === "step");
  if (steps.length === 0) return [];
  const pts = (key: string): [number, number][] => steps.map((s) => [s.step, s[key]]);
  const loss = join(runDir, "loss.png");
  const lr = join(runDir, "lr.png");
  await writeLineChartPng(
    loss,
    [
      { label: "total", points: pts("loss"), color: "#222" },
      { label: "NCE (video-audio)", points: pts("nce"), color: "#d62728" },
      { label: "MIL-NCE (video-text)", points: pts("milNce"), color: "#1f77b4" },
    ],
    { title: "Pretraining loss", xLabel: "step", yLabel: "loss" },
  );
  await writeLineChartPng(lr, [{ label: "learning rate", points: pts("lr"), color: "#2ca02c" }], {
    title: "Learning rate",
    xLabel: "step",
    yLabel: "learning rate",
  });
  return [loss, lr];
}

export async function runPretraining(
  config: PretrainConfig,
  o: PretrainRunOptions = {},
): Promise<PretrainResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runDir = config.runDir;
  await checkRunDir(runDir, o.resume ?? false);
  const backend = await selectBackend(config.model.backend as BackendChoice);
  const fast = backend.fast.enabled
    ? `, matrix products on ${backend.fast.engine} (${backend.fast.threads} thread${backend.fast.threads === 1 ? "" : "s"}` +
      `${backend.fast.caller === "node-binding" ? ", through onnxruntime-node's run" : ""})`
    : backend.name === "wasm" && backend.fast.reason
      ? `, stock kernels (${backend.fast.reason})`
      : "";
  const passed = backend.skipped.length ? `; passed over ${backend.skipped.join(", ")}` : "";
  log(`vatt: backend ${backend.name}${fast}${passed}`);
  const { decoder, decoderIsolation } = config.data;
  log(
    `vatt: ${await describeDecoder(decoder as DecodeOptions["decoder"], decoderIsolation as DecodeOptions["isolation"])}`,
  );

  // Each distinct problem is printed once (a bad file fails again every pass), the first few only; all are counted.
  const shown = new Set<string>();
  const skips = new SkipLog(50, (event) => {
    if (shown.has(event.message) || shown.size > 5) return;
    shown.add(event.message);
    log(
      shown.size <= 5
        ? `vatt: skipped: ${event.message}`
        : "vatt: more skips follow; counts are in metrics.jsonl and the summary",
    );
  });
  const vocab = await runVocabulary(config, skips);
  const modelConfig = runModelConfig(config, vocab.size);
  const tooLarge = wasmTrainingMemoryProblem(modelConfig, backend.name);
  if (tooLarge) throw new Error(tooLarge);
  const model = createModel(modelConfig, config.seed);
  const optimizer = createOptimizer(
    {
      ...pretrainingOptimizer({
        lr: config.train.learningRate,
        finalLr: config.train.finalLearningRate,
        warmupSteps: config.train.warmupSteps,
        totalSteps: config.train.steps,
      }),
      ...(config.train.gradClipNorm > 0 ? { clipNorm: config.train.gradClipNorm } : {}),
    },
    model.params,
  );
  // Videos that fail pass after pass stop being asked for (core/retired.ts). The retired list comes back from the
  // run directory's file (a person may have removed entries, to give those files another chance), the
  // bookkeeping of the pass in progress from the checkpoint, so that the resumed run judges it as the first did.
  const retired = new RetiredFiles({ after: config.data.retireAfter, atOnce: retireAtOnce });
  try {
    let position: StreamPosition | undefined;
    if (o.resume) {
      position = await resumeFromLastCheckpoint<StreamPosition>(runDir, model, optimizer);
      log(
        `vatt: resumed ${runDir} at step ${optimizer.step} (data epoch ${position.epoch}, next ${position.next})`,
      );
      const books = await lastCheckpointDataState(runDir);
      const listed = await readRetiredFiles(runDir);
      if (books !== undefined || listed !== undefined) {
        const state = books as { retired?: unknown } | undefined;
        try {
          retired.restore(state?.retired ?? listed, listed ?? state?.retired);
        } catch (err) {
          throw new RunError(`${retiredFilesPath(runDir)}: ${(err as Error).message}`);
        }
        const n = retired.entries().length;
        if (n > 0)
          log(
            `vatt: ${n} retired file${n === 1 ? " stays" : "s stay"} retired (${retiredFilesPath(runDir)})`,
          );
      }
    }
    const retirement = config.data.parquet ? undefined : new RetirementWatch(retired, runDir, log);
    const configFile = join(runDir, "config.json");
    // Atomic: a kill or a full disk mid-write must not leave a truncated config.json, which --resume reads first.
    try {
      await writeFileAtomic(configFile, `${JSON.stringify(config, null, 2)}\n`);
    } catch (err) {
      // A resumed run still has the config.json it started from; a full disk then costs only this rewrite.
      if (!o.resume) throw err;
      log(
        `vatt: could not rewrite '${configFile}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
          "the previous one is kept",
      );
    }
    const metrics = new MetricsLog(join(runDir, "metrics.jsonl"));
    const params = paramCounts(modelConfig).total;
    metrics.write({
      event: o.resume ? "resume" : "start",
      step: optimizer.step,
      backend: backend.name,
      preset: modelConfig.preset,
      params,
      vocab: vocab.size,
    });
    log(
      `vatt: ${o.resume ? "resuming" : "pretraining"} ${modelConfig.preset} (${(params / 1e6).toFixed(2)} M parameters, ` +
        `vocabulary ${vocab.size}) for ${config.train.steps} steps of ${config.train.batchSize} examples; run directory ${runDir}`,
    );

    const decode = decodeOptionsFor(modelConfig, config);
    let items: EvalItem[] | undefined;
    let lastEval: EvalReport | undefined;
    const evaluate = async (step: number): Promise<void> => {
      items ??= await evaluationItems(config, modelConfig, skips);
      if (items.length < 2) {
        log("vatt: evaluation skipped: fewer than 2 held-out items (raise data.heldOutShare or add videos)");
        return;
      }
      log(`vatt: evaluating retrieval on ${items.length} held-out items at step ${step} ...`);
      lastEval = await evaluateRetrieval({
        model,
        vocab,
        items,
        decode,
        windows: config.eval.windows,
        concurrency: config.data.concurrency,
        skips,
        step,
        signal: o.stop,
      });
      await writeEvalReport(runDir, lastEval);
      metrics.write({ event: "eval", ...lastEval });
      for (const line of describeEval(lastEval)) log(`vatt: ${line}`);
    };

    const governor = threadGovernorFor(backend.fast, (e) => {
      metrics.write({ event: "threads", ...e });
      if (e.decision === "trial" || e.decision === "no-gain") return;
      log(
        `vatt: step ${e.step}: the model now runs on ${e.threads} thread${e.threads === 1 ? "" : "s"}: ${e.reason}`,
      );
    });
    const summary = await runTrainingLoop({
      runDir,
      model,
      optimizer,
      onStepTimes: governor && ((step, waited, computed) => governor.observe(step, waited, computed)),
      threads: governor && (() => governor.threads),
      data: positionedBatches({
        config,
        model: modelConfig,
        vocab,
        skips,
        resume: position,
        signal: o.stop,
        retirement,
        log,
      }),
      steps: config.train.steps,
      seed: config.seed,
      lambda: config.train.lambda,
      checkpointEvery: config.train.checkpointEvery,
      keepCheckpoints: config.train.keepCheckpoints,
      logEvery: config.train.logEvery,
      skips,
      metrics,
      startPosition: position,
      stop: o.stop,
      evalEvery: config.train.evalEvery,
      evaluate,
      checkpointExtra: { runConfig: config },
      checkpointDataState: () => ({ retired: retired.toJSON() }),
    });
    await retirement?.flush();
    const retiredNow = retired.entries();
    metrics.write({
      event: "end",
      ...summary,
      losses: undefined,
      skips: skips.byReason(),
      skipTallies: skips.tallies(),
      retired: retiredNow.map(({ file, reason, passes, fromPass, rule }) => ({
        file,
        reason,
        passes,
        fromPass,
        rule,
      })),
    });
    if (summary.ended === "data-exhausted") {
      log(
        retiredNow.length > 0
          ? `vatt: the data ran out: every clip left failed or belongs to a retired file (${retiredNow.length} in ` +
              `${retiredFilesPath(runDir)}); fix or replace those files, then remove them from that list and --resume`
          : "vatt: the data ran out: no example could be read (see the skips above); training stopped early",
      );
    }
    if (!o.skipFinalEval && summary.ended !== "stopped" && summary.stepsThisRun > 0)
      await evaluate(summary.step);
    const plots = await writeRunPlots(runDir, log);
    return {
      runDir,
      backend,
      summary,
      eval: lastEval,
      skips: skips.byReason(),
      skipTallies: skips.tallies(),
      retired: retiredNow,
      files: {
        metrics: join(runDir, "metrics.jsonl"),
        config: configFile,
        ...(lastEval ? { eval: join(runDir, "eval.json") } : {}),
        plots,
        ...(summary.lastCheckpoint ? { checkpoint: summary.lastCheckpoint } : {}),
        ...(retiredNow.length > 0 ? { retired: retiredFilesPath(runDir) } : {}),
      },
    };
  } finally {
    disposeModel(model);
    disposeOptimizer(optimizer);
  }
}
