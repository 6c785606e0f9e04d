import { type Command, intOption, numberOption, requireString } from "../cli.js";

export const indexCommand: Command = {
  name: "index",
  summary:
    "Embed every clip window of a folder of videos into a searchable index (only new files on a re-run)",
  usage: "vatt index --checkpoint RUN_DIR|CKPT|EXPORT --videos DIR --out INDEX [--hop SECONDS]",
  options: {
    checkpoint: {
      type: "string",
      help: "a run directory (last checkpoint), a checkpoint folder, a .safetensors file or a 'vatt export' folder",
    },
    videos: { type: "string", help: "folder of videos (searched recursively: mp4 webm mkv mov avi m4v)" },
    out: { type: "string", help: "index folder (created, or grown when it exists)" },
    hop: { type: "string", help: "seconds between window starts (default: one clip length)" },
    "files-per-part": {
      type: "string",
      help: "videos embedded per appended part (resume granularity)",
      default: "16",
    },
    quiet: { type: "boolean", help: "no progress line" },
  },
  async run(args) {
    const model = requireString("index", args, "checkpoint");
    const videos = requireString("index", args, "videos");
    const out = requireString("index", args, "out");
    const { indexVideos } = await import("../../pipeline/video-search.js");
    const tty = process.stderr.isTTY && !args.values.quiet;
    const r = await indexVideos({
      model,
      videos,
      out,
      hop: numberOption("index", args, "hop", { min: 0.01 }),
      filesPerPart: intOption("index", args, "files-per-part", { min: 1 }),
      onProgress: (p) => {
        if (tty) process.stderr.write(`\rvatt index: ${p.files}/${p.of} videos, ${p.rows} windows`);
      },
    });
    if (tty) process.stderr.write("\n");
    const skipped = r.skips.count
      ? `; ${r.skips.count} unreadable videos skipped (tried again next time)`
      : "";
    console.log(
      `indexed ${r.embedded} of ${r.found} videos (${r.found - r.embedded} unchanged) into ${out}: ` +
        `${r.rows} new windows, ${r.live} in all${skipped}`,
    );
    for (const e of r.skips.lastEvents()) console.log(`  skipped ${e.message}`);
    return 0;
  },
};
