import { type Command, optionalString, UserError } from "../cli.js";
import { flagLayer, printResult, stopOnSignals } from "./pretrain.js";

export const demoCommand: Command = {
  name: "demo",
  summary:
    "The main job on built-in defaults: synthetic data -> tiny pretraining -> retrieval eval (npm start)",
  usage:
    "vatt demo [--data DIR] [--run-dir DIR] [--steps N] [--set KEY=VALUE ...] | vatt demo --transfer [--checkpoint RUN] [--out DIR]",
  options: {
    data: {
      type: "string",
      help: "where the synthetic datasets are made (if absent) and read",
      default: "data/demo",
    },
    "run-dir": { type: "string", help: "run directory (default: runs/demo-<date>-<time>)" },
    steps: { type: "string", help: "optimiser steps (default 1500: about 70 s on 2 cores)" },
    "batch-size": { type: "string", help: "examples per step (default 16)" },
    seed: { type: "string", help: "the run's seed (default 0)" },
    backend: { type: "string", help: "TensorFlow.js backend: auto, node-gpu, node, wasm, cpu" },
    set: { type: "string", multiple: true, help: "any config key (see 'vatt pretrain --help-config')" },
    transfer: {
      type: "boolean",
      help: "after pretraining: linear eval and fine-tuning on synthetic UCF101 / ESC-50, pretrained vs random init",
    },
    checkpoint: { type: "string", help: "--transfer: the pretraining run (default: the newest runs/demo-*)" },
    out: { type: "string", help: "--transfer: where the downstream runs go", default: "runs/demo-transfer" },
  },
  async run(args) {
    const { ConfigError } = await import("../../pipeline/config.js");
    const { runDemo } = await import("../../pipeline/demo.js");
    const { RunError } = await import("../../pipeline/pretrain.js");
    const stop = stopOnSignals();
    if (args.values.transfer) {
      try {
        const { runTransferDemo } = await import("../../pipeline/demo-transfer.js");
        const r = await runTransferDemo({
          checkpoint: optionalString(args, "checkpoint"),
          dataDir: optionalString(args, "data") ?? "data/demo",
          outDir: optionalString(args, "out") ?? "runs/demo-transfer",
          stop: stop.signal,
        });
        console.log(`transfer from ${r.checkpoint} (${r.seconds.toFixed(0)} s), figures in %:\n${r.table}`);
        return 0;
      } catch (err) {
        if (err instanceof RunError) throw new UserError(`vatt demo: ${err.message}`);
        throw err;
      } finally {
        stop.dispose();
      }
    }
    try {
      const result = await runDemo({
        dataDir: optionalString(args, "data") ?? "data/demo",
        overrides: [flagLayer("demo", args)],
        stop: stop.signal,
      });
      await printResult(result);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) throw new UserError(`vatt demo: ${err.message}`, 2);
      if (err instanceof RunError) throw new UserError(`vatt demo: ${err.message}`);
      throw err;
    } finally {
      stop.dispose();
    }
  },
};
