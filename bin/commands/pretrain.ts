import { existsSync } from "node:fs";
import { join } from "node:path";
import type { PretrainConfig } from "../../pipeline/config.js";
import type { PretrainResult } from "../../pipeline/pretrain.js";
import { type Command, type ParsedArgs, UserError } from "../cli.js";

/** Flags that set one config key each; everything else goes through --set KEY=VALUE. */
const FLAG_KEYS: Record<string, string> = {
  preset: "model.preset",
  howto100m: "data.howto100m",
  audioset: "data.audioset",
  parquet: "data.parquet",
  "run-dir": "runDir",
  steps: "train.steps",
  "batch-size": "train.batchSize",
  seed: "seed",
  "drop-rate": "model.dropTokenRate",
  lr: "train.learningRate",
  backend: "model.backend",
  vocab: "data.vocab",
};

/** The config layer given on the command line: the named flags, --set pairs and --follow. */
export function flagLayer(command: string, args: ParsedArgs): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    if (typeof args.values[flag] === "string") layer[key] = args.values[flag];
  }
  for (const pair of (args.values.set as string[] | undefined) ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new UserError(`vatt ${command}: --set takes KEY=VALUE (e.g. train.steps=500), got '${pair}'`, 2);
    layer[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (args.values.follow) layer["data.follow"] = true;
  return layer;
}

/** Builds the effective config; a config error becomes a one-line usage error naming the key. */
export async function configFromArgs(
  command: string,
  args: ParsedArgs,
  defaults: unknown = {},
): Promise<PretrainConfig> {
  const { ConfigError, readConfigFile, resolveConfig } = await import("../../pipeline/config.js");
  try {
    // Resuming starts from the run's own effective config, so `--resume --run-dir DIR` alone continues it.
    const runDir = args.values["run-dir"];
    const saved =
      args.values.resume && typeof runDir === "string" && existsSync(join(runDir, "config.json"))
        ? await readConfigFile(join(runDir, "config.json"))
        : {};
    const file = typeof args.values.config === "string" ? await readConfigFile(args.values.config) : {};
    return resolveConfig(defaults, saved, file, flagLayer(command, args));
  } catch (err) {
    if (err instanceof ConfigError) throw new UserError(`vatt ${command}: ${err.message}`, 2);
    throw err;
  }
}

/** SIGINT / SIGTERM: the first stops after the current step with a checkpoint, the second quits at once. */
export function stopOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`\nvatt: ${name} again: quitting now (the last checkpoint is intact)\n`);
      process.exit(130);
    }
    process.stderr.write(
      `\nvatt: ${name}: stopping after this step and writing a checkpoint (again to quit now)\n`,
    );
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

export async function printResult(r: PretrainResult): Promise<void> {
  const { describeEval } = await import("../../pipeline/evaluate.js");
  const s = r.summary;
  const lines = [
    `run directory: ${r.runDir}`,
    `steps: ${s.step} (${s.stepsThisRun} this run, ${s.skippedSteps} skipped), ${s.examples} examples in ${s.seconds.toFixed(0)} s ` +
      `(${(s.examples / Math.max(1e-9, s.seconds)).toFixed(1)} examples/s, data wait ${((100 * s.dataWaitSeconds) / Math.max(1e-9, s.seconds)).toFixed(0)}%)`,
  ];
  if (s.losses.length > 0) {
    const first = s.losses.slice(0, Math.min(10, s.losses.length));
    const last = s.losses.slice(-Math.min(10, s.losses.length));
    const mean = (xs: { loss: number }[]) => xs.reduce((a, b) => a + b.loss, 0) / xs.length;
    lines.push(
      `loss: ${mean(first).toFixed(3)} (first ${first.length} steps) -> ${mean(last).toFixed(3)} (last ${last.length})`,
    );
  }
  const { describeSkipTallies } = await import("../../core/skips.js");
  const { describeRetired } = await import("../../pipeline/retirement.js");
  const skipped = describeSkipTallies(r.skipTallies);
  if (skipped.length > 0) lines.push("skipped:", ...skipped.map((line) => `  ${line}`));
  if (r.retired.length > 0) {
    lines.push(`retired files (not asked for again; ${r.files.retired}):`);
    lines.push(...r.retired.map((e) => `  ${describeRetired(e)}`));
  }
  if (r.eval) lines.push(...describeEval(r.eval));
  lines.push(`metrics: ${r.files.metrics}`);
  if (r.files.eval) lines.push(`evaluation: ${r.files.eval}`);
  if (r.files.plots.length) lines.push(`plots: ${r.files.plots.join(", ")}`);
  if (r.files.checkpoint) lines.push(`checkpoint: ${r.files.checkpoint}`);
  console.log(lines.join("\n"));
}

export const pretrainCommand: Command = {
  name: "pretrain",
  summary: "Pretrain VATT on streaming raw video, audio and transcripts (NCE + MIL-NCE)",
  usage:
    "vatt pretrain [--config FILE] [--preset NAME] [--howto100m DIR] [--audioset DIR] [--run-dir DIR] [options]",
  options: {
    config: { type: "string", help: "YAML or JSON config file (flags override it)" },
    preset: { type: "string", help: "model preset: tiny, BBS, MBS, LBS, MA-Medium" },
    howto100m: { type: "string", help: "HowTo100M-layout dataset folder" },
    audioset: { type: "string", help: "AudioSet-layout dataset folder" },
    parquet: {
      type: "string",
      help: "shard folder written by 'vatt prepare' (needs --vocab when it has captions)",
    },
    "run-dir": { type: "string", help: "where checkpoints, metrics, eval.json and plots go" },
    steps: { type: "string", help: "optimiser steps in total" },
    "batch-size": { type: "string", help: "examples per step" },
    seed: { type: "string", help: "the run's seed" },
    "drop-rate": { type: "string", help: "DropToken rate" },
    lr: { type: "string", help: "peak learning rate" },
    backend: { type: "string", help: "TensorFlow.js backend: auto, node-gpu, node, wasm, cpu" },
    vocab: { type: "string", help: "vocabulary file (default: built from the captions)" },
    set: {
      type: "string",
      multiple: true,
      help: "any config key, e.g. --set train.checkpointEvery=50 (repeatable)",
    },
    resume: { type: "boolean", help: "continue the run in --run-dir from its last checkpoint" },
    follow: { type: "boolean", help: "keep training as new videos and captions appear" },
    "help-config": { type: "boolean", help: "list every config key with its default" },
  },
  async run(args) {
    if (args.values["help-config"]) {
      const { describeSchema } = await import("../../pipeline/config.js");
      console.log(
        ["Config keys (file, --set KEY=VALUE, or the flags above):", ...describeSchema()].join("\n"),
      );
      return 0;
    }
    const config = await configFromArgs("pretrain", args);
    const { RunError, runPretraining } = await import("../../pipeline/pretrain.js");
    const stop = stopOnSignals();
    try {
      await printResult(
        await runPretraining(config, { resume: Boolean(args.values.resume), stop: stop.signal }),
      );
      return 0;
    } catch (err) {
      if (err instanceof RunError) throw new UserError(`vatt pretrain: ${err.message}`);
      throw err;
    } finally {
      stop.dispose();
    }
  },
};
