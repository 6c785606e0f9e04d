import { type Command, requireString } from "../cli.js";

export const reportCommand: Command = {
  name: "report",
  summary:
    "Write one self-contained HTML file of a run: curves, evaluation beside chance, skips, config, images",
  usage: "vatt report RUN_DIR --out report.html",
  options: {
    out: { type: "string", help: "the HTML file to write" },
  },
  positionals: { min: 1, max: 1, names: "RUN_DIR" },
  async run(args) {
    const out = requireString("report", args, "out");
    const { writeReport } = await import("../../pipeline/report.js");
    const { bytes } = await writeReport(args.positionals[0], out);
    console.log(`wrote ${out} (${(bytes / 1024).toFixed(0)} kB)`);
    return 0;
  },
};
