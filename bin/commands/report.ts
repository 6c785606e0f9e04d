import { type Command, optionalString, requireString } from "../cli.js";

export const reportCommand: Command = {
  name: "report",
  summary:
    "Write one self-contained HTML file of a run: curves, evaluation beside chance, skips, config, images",
  usage: "vatt report RUN_DIR --out report.html [--dataset DIR]",
  options: {
    out: { type: "string", help: "the HTML file to write" },
    dataset: {
      type: "string",
      help: "dataset folder: its synth.json names the concepts on the embedding map",
    },
  },
  positionals: { min: 1, max: 1, names: "RUN_DIR" },
  async run(args) {
    const out = requireString("report", args, "out");
    const { writeReport } = await import("../../pipeline/report.js");
    const dataset = optionalString(args, "dataset");
    const { bytes } = await writeReport(args.positionals[0], out, dataset ? { dataset } : {});
    console.log(`wrote ${out} (${(bytes / 1024).toFixed(0)} kB)`);
    return 0;
  },
};
