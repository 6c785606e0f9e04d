import { probe } from "../../media/probe.js";
import type { Command } from "../cli.js";

export const probeCommand: Command = {
  name: "probe",
  summary: "Print what a media file holds: duration, frame rates, size, rotation, audio, codecs",
  usage: "vatt probe FILE [--json]",
  options: { json: { type: "boolean", help: "print one JSON object" } },
  positionals: { min: 1, max: 1, names: "FILE" },
  async run(args) {
    const file = args.positionals[0];
    const info = await probe(file);
    if (args.values.json) {
      console.log(JSON.stringify(info));
      return 0;
    }
    const rows: [string, string][] = [
      ["file", info.file],
      ["format", info.formatName],
      ["duration", `${info.duration.toFixed(3)} s`],
      [
        "video",
        info.hasVideo
          ? `${info.videoCodec} ${info.width}x${info.height}, rotation ${info.rotation}, ` +
            `avg ${info.avgFrameRate.toFixed(3)} fps, real ${info.realFrameRate.toFixed(3)} fps`
          : "none",
      ],
      [
        "audio",
        info.hasAudio ? `${info.audioCodec} ${info.audioSampleRate} Hz, ${info.audioChannels} ch` : "none",
      ],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(9)}${v}`);
    return 0;
  },
};
