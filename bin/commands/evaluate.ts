import { type Command, choiceOption, intOption, optionalString, requireString, UserError } from "../cli.js";
import { figuresJson } from "./finetune.js";

const KINDS = ["msrvtt", "youcook2", "howto100m", "audioset"] as const;

export const evaluateCommand: Command = {
  name: "evaluate",
  summary:
    "Zero-shot retrieval of a pretraining checkpoint on a benchmark (MSR-VTT, YouCook2, ...): R@1/5/10, MedR",
  usage: "vatt evaluate --checkpoint RUN --dataset DIR --kind msrvtt|youcook2|howto100m|audioset [--json]",
  options: {
    checkpoint: { type: "string", help: "pretraining run, checkpoint folder or .safetensors file" },
    dataset: { type: "string", help: "the benchmark's folder" },
    kind: { type: "string", help: `layout: ${KINDS.join(", ")}` },
    windows: { type: "string", help: "windows averaged per video (paper: 4)" },
    "max-items": { type: "string", help: "items evaluated at most (default: all)" },
    vocab: { type: "string", help: "vocabulary file (default: the run's vocab.txt)" },
    json: { type: "boolean", help: "print one JSON object with the figures and their chance levels" },
  },
  async run(args) {
    const checkpoint = requireString("evaluate", args, "checkpoint");
    const dataset = requireString("evaluate", args, "dataset");
    const kind = choiceOption("evaluate", args, "kind", KINDS);
    if (!kind) throw new UserError(`vatt evaluate: --kind is required (${KINDS.join(", ")})`, 2);
    const { evaluateBenchmark } = await import("../../pipeline/benchmark-eval.js");
    const { RunError } = await import("../../pipeline/pretrain.js");
    try {
      const r = await evaluateBenchmark({
        checkpoint,
        dataset,
        kind,
        windows: intOption("evaluate", args, "windows", { min: 1 }),
        maxItems: intOption("evaluate", args, "max-items", { min: 2 }),
        vocab: optionalString(args, "vocab"),
      });
      if (args.values.json) {
        const rep = r.report;
        console.log(
          figuresJson(r.figures, r.chance, {
            queries: (rep.textToVideo ?? rep.videoToAudio)?.queries,
            videoToAudio: rep.videoToAudio,
            audioToVideo: rep.audioToVideo,
          }),
        );
      } else {
        const { describeEval } = await import("../../pipeline/evaluate.js");
        for (const line of describeEval(r.report)) console.log(line);
      }
      return 0;
    } catch (err) {
      if (err instanceof RunError) throw new UserError(`vatt evaluate: ${err.message}`);
      throw err;
    }
  },
};
