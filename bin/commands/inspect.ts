import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Command, choiceOption, intOption, requireString, UserError } from "../cli.js";

export const inspectCommand: Command = {
  name: "inspect",
  summary: "Draw a contact sheet (PNG) of augmented examples: frames, audio waveform, captions or labels",
  usage: "vatt inspect --dataset DIR --kind howto100m|audioset --out grid.png [--examples N] [--size PX]",
  options: {
    dataset: { type: "string", help: "dataset folder (the layout `vatt synth` writes)" },
    kind: { type: "string", help: "dataset layout: howto100m or audioset" },
    out: { type: "string", help: "PNG file to write" },
    examples: { type: "string", help: "examples (rows) on the sheet", default: "4" },
    frames: { type: "string", help: "frames shown per example", default: "8" },
    size: { type: "string", help: "augmented frame size in pixels (the model's input size)", default: "112" },
    seed: { type: "string", help: "random seed of the augmentation", default: "0" },
  },
  async run(args) {
    const root = requireString("inspect", args, "dataset");
    const out = requireString("inspect", args, "out");
    const kind = choiceOption("inspect", args, "kind", ["howto100m", "audioset"] as const);
    if (!kind) throw new UserError("vatt inspect: --kind is required (howto100m or audioset)", 2);
    const seed = intOption("inspect", args, "seed", { min: 0 })!;
    const size = intOption("inspect", args, "size", { min: 16, max: 512 })!;
    const { SkipLog } = await import("../../core/skips.js");
    const { audioSet, readClassLabels } = await import("../../datasets/audioset.js");
    const { howTo100M } = await import("../../datasets/howto100m.js");
    const skips = new SkipLog();
    const source = kind === "howto100m" ? howTo100M({ root, seed, skips }) : audioSet({ root, seed, skips });
    const classNames =
      kind === "audioset"
        ? (await readClassLabels(join(root, "class_labels_indices.csv"), skips)).names
        : undefined;
    const { inspectRefs } = await import("../../pipeline/inspect.js");
    const png = await inspectRefs(source.refs(0), {
      examples: intOption("inspect", args, "examples", { min: 1, max: 64 })!,
      framesShown: intOption("inspect", args, "frames", { min: 1, max: 32 })!,
      seed,
      decode: { shortSide: Math.round((size * 256) / 224) },
      augment: { outHeight: size, outWidth: size },
      classNames,
      skips,
    });
    await writeFile(out, png);
    const skipped = skips.count > 0 ? ` (${skips.count} skipped: ${JSON.stringify(skips.byReason())})` : "";
    console.log(`wrote ${out}${skipped}`);
    return 0;
  },
};
