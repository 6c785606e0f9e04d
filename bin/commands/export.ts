/**
 * `vatt export`: a checkpoint's encoders as ONNX models with the notes to feed them (pipeline/export.ts).
 */
import { type Command, choiceOption, optionalString, requireString } from "../cli.js";

function size(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

export const exportCommand: Command = {
  name: "export",
  summary: "Write a checkpoint's video, audio and text encoders as ONNX models (onnxruntime, no vatt needed)",
  usage: "vatt export --checkpoint RUN_DIR|CKPT --format onnx --out DIR",
  options: {
    checkpoint: {
      type: "string",
      help: "a run directory (last checkpoint), a checkpoint folder or a .safetensors file",
    },
    format: { type: "string", help: "export format: onnx", default: "onnx" },
    out: {
      type: "string",
      help: "folder to write (video.onnx, audio.onnx, text.onnx, vocab.txt, vatt-export.json)",
    },
    vocab: { type: "string", help: "vocabulary file (default: the run's vocab.txt)" },
  },
  async run(args) {
    const { EXPORT_FORMATS, exportOnnx, MANIFEST } = await import("../../pipeline/export.js");
    const checkpoint = requireString("export", args, "checkpoint");
    const out = requireString("export", args, "out");
    const format = choiceOption("export", args, "format", EXPORT_FORMATS);
    const r = await exportOnnx({ checkpoint, out, format, vocab: optionalString(args, "vocab") });
    for (const f of r.files) console.log(`  ${f.name.padEnd(18)} ${size(f.bytes)}`);
    const m = r.manifest;
    console.log(
      `wrote the ${m.preset} encoders to ${out} (ONNX opset ${m.opset}; embeddings not normalised, see ${MANIFEST})`,
    );
    if (!r.vocabulary)
      console.log(
        "note: the run has no vocabulary (vocab.txt); text.onnx takes word ids only (give --vocab FILE)",
      );
    return 0;
  },
};
