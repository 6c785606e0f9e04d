import type { SynthKind } from "../../datasets/synth.js";
import { type Command, choiceOption, intOption, numberOption, requireString } from "../cli.js";

export const synthCommand: Command = {
  name: "synth",
  summary:
    "Write a synthetic dataset in a real layout (HowTo100M, AudioSet, or a downstream benchmark; media made in code)",
  usage:
    "vatt synth --kind howto100m|audioset|ucf101|hmdb51|esc50|msrvtt|youcook2|images --out DIR [--videos N] [--seed S] [options]",
  options: {
    kind: {
      type: "string",
      help: "dataset layout: howto100m, audioset (pretraining) or ucf101, hmdb51, esc50, msrvtt, youcook2, images",
    },
    out: { type: "string", help: "folder to write (created if absent)" },
    videos: {
      type: "string",
      help: "number of videos (howto100m), segments (audioset) or media files (downstream kinds; default per kind)",
    },
    seed: { type: "string", help: "random seed: same seed, same dataset", default: "0" },
    width: { type: "string", help: "frame width in pixels (even; default 320, downstream 160)" },
    height: { type: "string", help: "frame height in pixels (even; default 240, downstream 120)" },
    fps: { type: "string", help: "frame rate (default 30, downstream 25)" },
    "min-seconds": { type: "string", help: "howto100m: shortest video", default: "20" },
    "max-seconds": { type: "string", help: "howto100m: longest video", default: "60" },
    "missing-share": {
      type: "string",
      help: "audioset: share of rows whose clip is not written",
      default: "0",
    },
    quiet: { type: "boolean", help: "print nothing but errors" },
  },
  async run(args) {
    const { DOWNSTREAM_KINDS, isDownstreamKind, synthesizeDownstream } = await import(
      "../../datasets/synth-downstream.js"
    );
    const kind = choiceOption("synth", args, "kind", ["howto100m", "audioset", ...DOWNSTREAM_KINDS]);
    const out = requireString("synth", args, "out");
    if (!kind) requireString("synth", args, "kind");
    const started = Date.now();
    const { synthesizeDataset } = await import("../../datasets/synth.js");
    const progress = args.values.quiet
      ? undefined
      : (done: number, total: number) =>
          process.stderr.write(`\rvatt synth: wrote ${done}/${total} media files`);
    if (kind && isDownstreamKind(kind)) {
      const truth = await synthesizeDownstream({
        kind,
        out,
        videos: intOption("synth", args, "videos", { min: 1 }),
        seed: intOption("synth", args, "seed", { min: 0 })!,
        width: intOption("synth", args, "width", { min: 16 }),
        height: intOption("synth", args, "height", { min: 16 }),
        fps: intOption("synth", args, "fps", { min: 1, max: 120 }),
        onProgress: progress,
      });
      if (!args.values.quiet) {
        process.stderr.write("\n");
        console.log(
          `wrote ${truth.kind} dataset to ${out}: ${truth.items.length} media files, ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      }
      return 0;
    }
    const truth = await synthesizeDataset({
      kind: kind as SynthKind,
      out,
      videos: intOption("synth", args, "videos", { min: 1 }) ?? 8,
      seed: intOption("synth", args, "seed", { min: 0 })!,
      width: intOption("synth", args, "width", { min: 16 }) ?? 320,
      height: intOption("synth", args, "height", { min: 16 }) ?? 240,
      fps: intOption("synth", args, "fps", { min: 1, max: 120 }) ?? 30,
      minSeconds: numberOption("synth", args, "min-seconds", { min: 4 }),
      maxSeconds: numberOption("synth", args, "max-seconds", { min: 4 }),
      missingShare: numberOption("synth", args, "missing-share", { min: 0, max: 0.99 }),
      onProgress: progress,
    });
    if (!args.values.quiet) {
      process.stderr.write("\n");
      const files = truth.videos.filter((v) => v.file).length;
      console.log(
        `wrote ${truth.kind} dataset to ${out}: ${files} media files, ${truth.videos.length} rows, ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    return 0;
  },
};
