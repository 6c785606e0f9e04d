import type { EmbedKind } from "../../pipeline/embed.js";
import { type Command, choiceOption, intOption, optionalString, requireString } from "../cli.js";

export const embedCommand: Command = {
  name: "embed",
  summary: "Write per-clip common-space embeddings (video, audio, text) of a dataset as .arrow or .parquet",
  usage:
    "vatt embed --checkpoint RUN_DIR|CKPT --dataset DIR|MANIFEST --kind howto100m|audioset|manifest --out FILE",
  options: {
    checkpoint: {
      type: "string",
      help: "a run directory (last checkpoint), a checkpoint folder or a .safetensors file",
    },
    dataset: {
      type: "string",
      help: "dataset folder (howto100m, audioset) or manifest file (.csv, .jsonl, .parquet)",
    },
    kind: { type: "string", help: "howto100m, audioset or manifest" },
    out: { type: "string", help: "output file: .arrow (Arrow IPC) or .parquet" },
    windows: { type: "string", help: "clips per video, uniformly spaced", default: "1" },
    vocab: { type: "string", help: "vocabulary file (default: the run's vocab.txt)" },
    backend: {
      type: "string",
      help: "TensorFlow.js backend: auto, node-gpu, node, wasm, cpu",
      default: "auto",
    },
  },
  async run(args) {
    const kind = choiceOption<EmbedKind>("embed", args, "kind", ["howto100m", "audioset", "manifest"]);
    const checkpoint = requireString("embed", args, "checkpoint");
    const dataset = requireString("embed", args, "dataset");
    const out = requireString("embed", args, "out");
    if (!kind) requireString("embed", args, "kind");
    const backend = choiceOption("embed", args, "backend", [
      "auto",
      "node-gpu",
      "node",
      "wasm",
      "cpu",
    ] as const);
    const { embedDataset } = await import("../../pipeline/embed.js");
    const { rows, skips } = await embedDataset({
      checkpoint,
      dataset,
      kind: kind!,
      out,
      windows: intOption("embed", args, "windows", { min: 1, max: 64 }),
      vocab: optionalString(args, "vocab"),
      backend,
    });
    console.log(`wrote ${rows} embeddings to ${out}${skips.count ? ` (${skips.count} clips skipped)` : ""}`);
    return 0;
  },
};
