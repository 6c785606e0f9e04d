/**
 * `vatt model-info`: parameter counts and inference GFLOPs of a preset, computed analytically (no tensors).
 */
import { PRESET_NAMES, presetConfig, withOverrides } from "../../model/config.js";
import { type ModelInfoReport, modelInfoReport } from "../../model/info.js";
import { type Command, intOption, numberOption, optionalString, requireString, UserError } from "../cli.js";

const NAME = "model-info";

/** Parses "32x224x224" (frames x height x width). */
function parseVideoSize(text: string): { frames: number; height: number; width: number } {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(text.trim());
  if (!m) throw new UserError(`vatt ${NAME}: --video must look like 32x224x224, got '${text}'`, 2);
  return { frames: Number(m[1]), height: Number(m[2]), width: Number(m[3]) };
}

function millions(n: number): string {
  return `${(n / 1e6).toFixed(3)} M (${n.toLocaleString("en-US")})`;
}

function formatReport(r: ModelInfoReport): string {
  const p = r.params;
  const g = r.gflops;
  const sizes = r.sizes.shared
    ? `shared ${r.sizes.video} backbone`
    : `video ${r.sizes.video}, audio ${r.sizes.audio}, text ${r.sizes.text}`;
  const lines = [
    `preset ${r.preset}: ${sizes}`,
    `input: video ${r.input.video}, audio ${r.input.audioSamples} samples, text ${r.input.textWords} words; DropToken ${r.dropRate}`,
    "",
    "parameters",
    `  video       ${millions(p.video)}`,
    `  audio       ${millions(p.audio)}`,
    `  text        ${millions(p.text)}`,
  ];
  if (r.sizes.shared) lines.push(`  shared      ${millions(p.shared)}`);
  lines.push(`  heads       ${millions(p.heads)}`);
  if (r.classes > 0) lines.push(`  classifier  ${millions(p.classifier)} (${r.classes} classes)`);
  lines.push(`  total       ${millions(p.total)}`);
  lines.push(`  video backbone ${millions(r.videoBackboneParams)}`);
  if (r.classes > 0)
    lines.push(`  video backbone + classifier ${millions(r.videoBackboneWithClassifierParams)}`);
  lines.push(
    "",
    "inference GFLOPs",
    `  video  ${g.video.toFixed(1)}  (${r.tokens.video} tokens)`,
    `  audio  ${g.audio.toFixed(1)}  (${r.tokens.audio} tokens)`,
    `  text   ${g.text.toFixed(2)}  (${r.tokens.text} tokens)`,
    `  heads  ${g.heads.toFixed(4)}`,
  );
  if (r.classes > 0) lines.push(`  classifier ${g.classifier.toFixed(4)}`);
  lines.push(`  total  ${g.total.toFixed(1)}`);
  return lines.join("\n");
}

export const modelInfoCommand: Command = {
  name: NAME,
  summary: "parameter counts and inference GFLOPs of a model preset (analytic, no weights needed)",
  usage: "vatt model-info --preset NAME [--video 32x224x224] [--drop-rate R] [--classes C] [--json]",
  options: {
    preset: { type: "string", help: `model preset: ${PRESET_NAMES.join(", ")}` },
    video: { type: "string", help: "video input FRAMESxHEIGHTxWIDTH (default: the preset's)" },
    "drop-rate": { type: "string", help: "DropToken rate applied to video and audio tokens", default: "0" },
    classes: { type: "string", help: "add a linear classifier with this many classes", default: "0" },
    json: { type: "boolean", help: "print one JSON object" },
  },
  async run(args) {
    const presetName = requireString(NAME, args, "preset");
    const preset = presetConfig(presetName);
    if (!preset) {
      throw new UserError(
        `vatt ${NAME}: unknown preset '${presetName}' (one of ${PRESET_NAMES.join(", ")})`,
        2,
      );
    }
    const dropRate = numberOption(NAME, args, "drop-rate", { min: 0, max: 0.999 }) ?? 0;
    const classes = intOption(NAME, args, "classes", { min: 0 }) ?? 0;
    const videoText = optionalString(args, "video");
    let config = preset;
    try {
      config = withOverrides(preset, { videoGeometry: videoText ? parseVideoSize(videoText) : {} });
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`vatt ${NAME}: ${(err as Error).message}`, 2);
    }
    const report = modelInfoReport(config, dropRate, classes);
    console.log(args.values.json ? JSON.stringify(report) : formatReport(report));
    return 0;
  },
};
