import { type Command, choiceOption, intOption, optionalString, requireString, UserError } from "../cli.js";
import { figuresJson } from "./finetune.js";

const KINDS = ["ucf101", "hmdb51", "esc50", "images", "folders"] as const;

export const linearEvalCommand: Command = {
  name: "linear-eval",
  summary:
    "Linear evaluation of a frozen backbone: cached pooled features, low-rank classifier or linear SVM",
  usage:
    "vatt linear-eval --checkpoint RUN|none --dataset DIR --kind KIND --modality video|audio [--split k | --all-splits] [--classifier lowrank|svm] [--json]",
  options: {
    checkpoint: {
      type: "string",
      help: "pretraining run, checkpoint folder or .safetensors file; 'none' = random init",
    },
    preset: { type: "string", help: "with --checkpoint none: the preset to build (default tiny)" },
    dataset: { type: "string", help: "the benchmark's folder" },
    kind: { type: "string", help: `layout: ${KINDS.join(", ")}` },
    modality: { type: "string", help: "video or audio (default: audio for esc50, else video)" },
    split: { type: "string", help: "UCF101/HMDB51 split 1-3, ESC-50 test fold 1-5 (default 1)" },
    "all-splits": { type: "boolean", help: "average over every split (UCF101/HMDB51 1-3, ESC-50 1-5)" },
    classifier: { type: "string", help: "lowrank (the paper's) or svm", default: "lowrank" },
    out: { type: "string", help: "where eval.json (and features/) go", default: "runs/linear-eval" },
    cache: { type: "string", help: "feature cache folder (default: OUT/features)" },
    "train-clips": {
      type: "string",
      help: "training clips per video: 1 = centre clip (reference), N = augmented",
    },
    epochs: { type: "string", help: "low-rank classifier epochs (reference 1000)" },
    seed: { type: "string", help: "seed (default 0)" },
    json: { type: "boolean", help: "print one JSON object with the figures and their chance levels" },
  },
  async run(args) {
    const checkpoint = requireString("linear-eval", args, "checkpoint");
    const dataset = requireString("linear-eval", args, "dataset");
    const kind = choiceOption("linear-eval", args, "kind", KINDS);
    if (!kind) throw new UserError(`vatt linear-eval: --kind is required (${KINDS.join(", ")})`, 2);
    const modalityArg = choiceOption("linear-eval", args, "modality", ["video", "audio"] as const);
    const classifier =
      choiceOption("linear-eval", args, "classifier", ["lowrank", "svm"] as const) ?? "lowrank";
    const split = intOption("linear-eval", args, "split", { min: 1, max: 5 });
    if (split !== undefined && args.values["all-splits"])
      throw new UserError("vatt linear-eval: give --split k or --all-splits, not both", 2);
    const { runLinearEval } = await import("../../pipeline/linear-eval.js");
    const { RunError } = await import("../../pipeline/pretrain.js");
    const { SPLITS, defaultModality } = await import("../../pipeline/transfer-data.js");
    try {
      const r = await runLinearEval({
        checkpoint,
        preset: optionalString(args, "preset"),
        dataset,
        kind,
        modality: modalityArg ?? defaultModality(kind),
        splits: args.values["all-splits"] ? SPLITS[kind] : [split ?? 1],
        classifier,
        outDir: optionalString(args, "out") ?? "runs/linear-eval",
        cacheDir: optionalString(args, "cache"),
        trainClips: intOption("linear-eval", args, "train-clips", { min: 1 }),
        epochs: intOption("linear-eval", args, "epochs", { min: 1 }),
        seed: intOption("linear-eval", args, "seed", { min: 0 }),
      });
      if (args.values.json)
        console.log(figuresJson(r.figures, r.chance, { splits: r.splits.map((s) => s.split), classifier }));
      else {
        const { describeFigures } = await import("../../pipeline/classify-eval.js");
        for (const s of r.splits)
          console.log(
            `split ${s.split} (${s.train} train rows, ${s.test} test videos): ${describeFigures(s.figures, s.chance)}`,
          );
        console.log(`mean: ${describeFigures(r.figures, r.chance)}`);
        console.log(`wrote ${r.files.join(", ")}`);
      }
      return 0;
    } catch (err) {
      if (err instanceof RunError) throw new UserError(`vatt linear-eval: ${err.message}`);
      throw err;
    }
  },
};
