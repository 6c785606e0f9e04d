/**
 * `vatt finetune`: a pretrained backbone (or the same model from random init: "from scratch") with a classifier,
 * trained on a benchmark's training split by the paper's protocol, then evaluated on its test split with 4 windows
 * x 3 crops. The run directory has the pretraining run's contract:
 *
 *   config.json     the effective fine-tuning config        metrics.jsonl   one JSON line per step / event
 *   checkpoints/    step-NNNNNNNNN/ (exact --resume)         loss.png, lr.png
 *   eval.json       figures beside chance levels            confusion.png   single-label test confusion matrix
 *
 * Ctrl-C stops after the current step with a checkpoint; --resume continues with the same losses as an
 * uninterrupted run (weights, SGD momentum, schedule step, data position; dropout and mixup keyed by step).
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StreamPosition } from "../core/order.js";
import { randomFor } from "../core/random.js";
import { SkipLog } from "../core/skips.js";
import { type BackendChoice, selectBackend } from "../model/backend.js";
import { addClassifier, finetuneStep, type Modality } from "../model/classifier.js";
import { createOptimizer, disposeOptimizer, finetuningOptimizer } from "../model/optim.js";
import { disposeModel } from "../model/vatt.js";
import { mixupBatch } from "../operators/mixup.js";
import { listCheckpoints } from "../sinks/checkpoints.js";
import { MetricsLog } from "../sinks/metrics.js";
import { writeLineChartPng } from "../sinks/plots.js";
import { resumeFromLastCheckpoint, runTrainingLoop, type TrainSummary } from "../sinks/training-loop.js";
import {
  type ClassifierEvalReport,
  describeFigures,
  evaluateClassifier,
  writeClassifierEval,
} from "./classify-eval.js";
import { RunError } from "./pretrain.js";
import { type FinetuneConfig, inheritedData, resolveFinetuneConfig } from "./transfer-config.js";
import {
  clipSettings,
  listRefs,
  loadBackbone,
  reportEmptyClasses,
  type TransferKind,
  trainingBatches,
  transferTask,
} from "./transfer-data.js";

export interface FinetuneOptions {
  /** Pretraining run / checkpoint, or "none" (random init). */
  checkpoint: string;
  /** With "none": the preset to build (default tiny). */
  preset?: string;
  dataset: string;
  kind: TransferKind;
  modality: Modality;
  /** Config layers over the defaults (a file, --set pairs); the run's saved config comes first on --resume. */
  layers?: unknown[];
  runDir?: string;
  resume?: boolean;
  stop?: AbortSignal;
  log?: (line: string) => void;
  /** Train only (tests). */
  skipEval?: boolean;
}

export interface FinetuneResult {
  runDir: string;
  config: FinetuneConfig;
  summary: TrainSummary;
  eval?: ClassifierEvalReport;
  backbone: string;
  skips: Record<string, number>;
  files: string[];
}

async function checkRunDir(runDir: string, resume: boolean): Promise<void> {
  try {
    await mkdir(runDir, { recursive: true });
    const probe = join(runDir, `.write-test-${process.pid}`);
    await writeFile(probe, "");
    await rm(probe);
  } catch (err) {
    throw new RunError(
      `run directory '${runDir}' is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): choose another with --run-dir`,
    );
  }
  const checkpoints = await listCheckpoints(runDir);
  if (!resume && checkpoints.length > 0)
    throw new RunError(
      `run directory '${runDir}' already holds checkpoints (last: step ${checkpoints.at(-1)?.step}): continue it with --resume, or use another --run-dir`,
    );
  if (resume && checkpoints.length === 0)
    throw new RunError(
      `nothing to resume: run directory '${runDir}' has no checkpoint yet; start it without --resume`,
    );
}

async function savedConfig(runDir: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(runDir, "config.json"), "utf8")).finetune;
  } catch {
    return {};
  }
}

async function writePlots(runDir: string): Promise<string[]> {
  const steps = (await readFile(join(runDir, "metrics.jsonl"), "utf8")).split("\n").flatMap((l) => {
    try {
      const r = JSON.parse(l) as Record<string, number | string>;
      return r.event === "step" ? [r as Record<string, number>] : [];
    } catch {
      return [];
    }
  });
  if (steps.length === 0) return [];
  const loss = join(runDir, "loss.png");
  const lr = join(runDir, "lr.png");
  await writeLineChartPng(
    loss,
    [{ label: "loss", points: steps.map((s) => [s.step, s.loss]), color: "#222" }],
    {
      title: "Fine-tuning loss",
      xLabel: "step",
      yLabel: "loss",
    },
  );
  await writeLineChartPng(
    lr,
    [{ label: "learning rate", points: steps.map((s) => [s.step, s.lr]), color: "#2ca02c" }],
    {
      title: "Learning rate",
      xLabel: "step",
      yLabel: "learning rate",
    },
  );
  return [loss, lr];
}

export async function runFinetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runDir = o.runDir ?? "runs/finetune";
  await checkRunDir(runDir, o.resume ?? false);
  const saved = o.resume ? await savedConfig(runDir) : {};
  // The backbone's decode settings first, so the config file and --set still win.
  const probeConfig = resolveFinetuneConfig(saved, ...(o.layers ?? []));
  await selectBackend(probeConfig.model.backend as BackendChoice);
  const backbone = await loadBackbone({
    checkpoint: o.checkpoint,
    preset: o.preset,
    modality: o.modality,
    resolution: probeConfig.model.resolution,
    frames: probeConfig.model.frames || (o.kind === "images" ? 4 : 0),
    seed: probeConfig.seed,
  });
  const config = resolveFinetuneConfig(inheritedData(backbone.runConfig), saved, ...(o.layers ?? []), {
    runDir,
  });
  const skips = new SkipLog(50, (e) => log(`vatt: skipped: ${e.message}`));
  const settings = clipSettings(backbone.model.config, o.modality, {
    fps: config.data.fps,
    stride: config.data.stride,
    shortSide: config.data.decodeShortSide,
    decoder: config.data.decoder,
    timeoutMs: config.data.decodeTimeoutMs,
    concurrency: config.data.concurrency,
    buffer: config.data.buffer,
  });
  const seconds = ((settings.decode.frames ?? 32) * config.data.stride) / config.data.fps;
  const task = await transferTask(o.kind, o.dataset, config.data.split, { windowSeconds: seconds }, skips);
  const trainRefs = await listRefs(task.train);
  if (trainRefs.length === 0)
    throw new RunError(`${o.kind} split ${task.split} at '${o.dataset}' lists no training file that exists`);
  reportEmptyClasses(task, trainRefs, skips);
  const spec = { modality: o.modality, classes: task.classes.length, multiLabel: task.multiLabel };
  const model = addClassifier(backbone.model, spec, config.seed);
  const optimizer = createOptimizer(
    {
      ...finetuningOptimizer(
        {
          lr: config.train.learningRate,
          finalLr: 0,
          warmupSteps: config.train.warmupSteps,
          totalSteps: config.train.steps,
        },
        config.train.gradClipNorm,
      ),
      method: { kind: "sgd", momentum: config.train.momentum },
      // The backbone's gradients are clipped in the step (the classifier's are not): no global clip here.
      clipNorm: undefined,
    },
    model.params,
  );
  const classifierDropout =
    config.train.classifierDropout >= 0 ? config.train.classifierDropout : o.modality === "video" ? 0.5 : 0;
  try {
    let position: StreamPosition | undefined;
    if (o.resume) {
      position = await resumeFromLastCheckpoint<StreamPosition>(runDir, model, optimizer);
      log(
        `vatt: resumed ${runDir} at step ${optimizer.step} (data epoch ${position.epoch}, next ${position.next})`,
      );
    }
    const runRecord = {
      finetune: config,
      checkpoint: o.checkpoint,
      backbone: backbone.describe,
      dataset: o.dataset,
      kind: o.kind,
      modality: o.modality,
      classes: task.classes,
      multiLabel: task.multiLabel,
    };
    await writeFile(join(runDir, "config.json"), `${JSON.stringify(runRecord, null, 2)}\n`);
    const metrics = new MetricsLog(join(runDir, "metrics.jsonl"));
    metrics.write({
      event: o.resume ? "resume" : "start",
      step: optimizer.step,
      ...runRecord,
      finetune: undefined,
    });
    log(
      `vatt: fine-tuning the ${o.modality} backbone of ${backbone.describe} on ${o.kind} split ${task.split} ` +
        `(${trainRefs.length} training ${o.modality === "audio" ? "clips" : "videos"}, ${task.classes.length} classes) ` +
        `for ${config.train.steps} steps of ${config.train.batchSize}; run directory ${runDir}`,
    );
    const mixup = task.multiLabel && o.modality === "audio" && config.train.mixup;
    const summary = await runTrainingLoop({
      runDir,
      model,
      optimizer,
      data: trainingBatches({
        source: task.train,
        classes: task.classes.length,
        settings,
        seed: config.seed,
        batchSize: config.train.batchSize,
        shuffleBuffer: config.data.shuffleBuffer,
        minArea: config.augment.minArea,
        flip: config.augment.flip,
        skips,
        resume: position,
      }),
      steps: config.train.steps,
      seed: config.seed,
      lambda: 0,
      checkpointEvery: config.train.checkpointEvery,
      keepCheckpoints: config.train.keepCheckpoints,
      logEvery: config.train.logEvery,
      skips,
      metrics,
      startPosition: position,
      stop: o.stop,
      checkpointExtra: { finetune: runRecord },
      step: (batch) =>
        finetuneStep(
          model,
          optimizer,
          mixup
            ? mixupBatch(batch, "audio", randomFor(config.seed, 0, optimizer.step, "finetune/mixup"))
            : batch,
          {
            ...spec,
            seed: config.seed,
            classifierDropout,
            labelSmoothing: config.train.labelSmoothing,
            backboneClipNorm: config.train.gradClipNorm,
          },
        ),
    });
    metrics.write({ event: "end", ...summary, losses: undefined, skips: skips.byReason() });
    const files = [join(runDir, "config.json"), join(runDir, "metrics.jsonl")];
    let report: ClassifierEvalReport | undefined;
    if (summary.ended !== "stopped" && !o.skipEval) {
      const refs = await listRefs(task.test, config.eval.maxVideos);
      log(
        `vatt: evaluating ${refs.length} test ${o.modality === "audio" ? "clips" : "videos"} (${config.eval.windows} windows x ${o.modality === "video" ? config.eval.crops : 1} crops) ...`,
      );
      report = await evaluateClassifier({
        model,
        modality: o.modality,
        refs,
        classes: task.classes,
        multiLabel: task.multiLabel,
        settings,
        windows: config.eval.windows,
        crops: config.eval.crops === 3 ? 3 : 1,
        batchSize: config.eval.batchSize,
        skips,
        signal: o.stop,
      });
      metrics.write({ event: "eval", step: summary.step, ...report.figures, chance: report.chance });
      files.push(
        ...(await writeClassifierEval(
          runDir,
          { step: summary.step, kind: o.kind, split: task.split, backbone: backbone.describe, ...report },
          task.classes,
          `${o.kind} split ${task.split}: ${backbone.describe}`,
        )),
      );
      log(`vatt: ${describeFigures(report.figures, report.chance)}`);
    }
    files.push(...(await writePlots(runDir)));
    return {
      runDir,
      config,
      summary,
      eval: report,
      backbone: backbone.describe,
      skips: skips.byReason(),
      files,
    };
  } finally {
    disposeModel(model);
    disposeOptimizer(optimizer);
  }
}
