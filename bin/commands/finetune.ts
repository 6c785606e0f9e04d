import { type Command, choiceOption, optionalString, requireString, UserError } from "../cli.js";
import { stopOnSignals } from "./pretrain.js";

const KINDS = ["ucf101", "hmdb51", "esc50", "audioset", "images", "folders"] as const;

/** --set KEY=VALUE pairs as one config layer. */
export function setLayer(command: string, pairs: string[] | undefined): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new UserError(`vatt ${command}: --set takes KEY=VALUE (e.g. train.steps=500), got '${pair}'`, 2);
    layer[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return layer;
}

/** The figures as one JSON object: the keys of the brief and "chance" with the same keys. */
export function figuresJson(figures: object, chance: object, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...figures, chance, ...extra });
}

export const finetuneCommand: Command = {
  name: "finetune",
  summary:
    "Fine-tune a pretrained backbone (or the same model from scratch) on a benchmark, then evaluate it",
  usage:
    "vatt finetune --checkpoint RUN|none --dataset DIR --kind KIND --modality video|audio|image --run-dir DIR [--config FILE] [--set K=V] [--resume] [--json]",
  options: {
    checkpoint: {
      type: "string",
      help: "pretraining run, checkpoint folder or .safetensors file; 'none' = random init",
    },
    preset: {
      type: "string",
      help: "with --checkpoint none: the preset to build (default tiny); else the preset the checkpoint must be",
    },
    dataset: { type: "string", help: "the benchmark's folder" },
    kind: { type: "string", help: `layout: ${KINDS.join(", ")}` },
    modality: {
      type: "string",
      help: "video, audio or image (image: the picture repeated as a 4-frame clip)",
    },
    "run-dir": { type: "string", help: "where config, metrics, checkpoints, plots and eval.json go" },
    config: { type: "string", help: "YAML or JSON fine-tuning config (--set overrides it)" },
    set: {
      type: "string",
      multiple: true,
      help: "any config key, e.g. --set train.steps=500 (see --help-config)",
    },
    resume: { type: "boolean", help: "continue the run in --run-dir from its last checkpoint" },
    json: { type: "boolean", help: "print one JSON object with the figures and their chance levels" },
    "help-config": { type: "boolean", help: "list every config key with its default" },
  },
  async run(args) {
    const { describeSchema, readConfigFile, ConfigError } = await import("../../pipeline/config.js");
    const { FINETUNE_SCHEMA } = await import("../../pipeline/transfer-config.js");
    if (args.values["help-config"]) {
      console.log(
        ["Fine-tuning config keys (file or --set KEY=VALUE):", ...describeSchema(FINETUNE_SCHEMA)].join("\n"),
      );
      return 0;
    }
    const checkpoint = requireString("finetune", args, "checkpoint");
    const dataset = requireString("finetune", args, "dataset");
    const kind = choiceOption("finetune", args, "kind", KINDS);
    if (!kind) throw new UserError(`vatt finetune: --kind is required (${KINDS.join(", ")})`, 2);
    const modalityArg = choiceOption("finetune", args, "modality", ["video", "audio", "image"] as const);
    const { runFinetune } = await import("../../pipeline/finetune.js");
    const { RunError } = await import("../../pipeline/pretrain.js");
    const { defaultModality } = await import("../../pipeline/transfer-data.js");
    const modality = modalityArg === "image" ? "video" : (modalityArg ?? defaultModality(kind));
    const stop = stopOnSignals();
    try {
      const file = optionalString(args, "config");
      const layers = [
        file ? await readConfigFile(file) : {},
        setLayer("finetune", args.values.set as string[] | undefined),
      ];
      const r = await runFinetune({
        checkpoint,
        preset: optionalString(args, "preset"),
        dataset,
        kind: modalityArg === "image" && kind === "folders" ? "folders" : kind,
        modality,
        layers,
        runDir: optionalString(args, "run-dir"),
        resume: Boolean(args.values.resume),
        stop: stop.signal,
      });
      if (args.values.json) {
        console.log(
          figuresJson(r.eval?.figures ?? {}, r.eval?.chance ?? {}, {
            runDir: r.runDir,
            step: r.summary.step,
            backbone: r.backbone,
          }),
        );
      } else {
        const { describeFigures } = await import("../../pipeline/classify-eval.js");
        console.log(
          [
            `run directory: ${r.runDir}`,
            `steps: ${r.summary.step} (${r.summary.stepsThisRun} this run), ${r.summary.examples} examples in ${r.summary.seconds.toFixed(0)} s`,
            ...(r.eval
              ? [
                  `test (${r.eval.videos} videos, ${r.eval.views} views each): ${describeFigures(r.eval.figures, r.eval.chance)}`,
                ]
              : []),
            ...r.files.map((f) => `wrote ${f}`),
          ].join("\n"),
        );
      }
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) throw new UserError(`vatt finetune: ${err.message}`, 2);
      if (err instanceof RunError) throw new UserError(`vatt finetune: ${err.message}`);
      throw err;
    } finally {
      stop.dispose();
    }
  },
};
