/**
 * `vatt export --format onnx`: a trained checkpoint's encoders as a folder that onnxruntime (Node, web, Python)
 * loads with no vatt code:
 *
 *   video.onnx, audio.onnx, text.onnx   the encoders with their common-space heads (model/export-onnx.ts)
 *   vocab.txt                           the run's vocabulary (line i = word id i), when the run has one
 *   vatt-export.json                    how to feed them: shapes, dtypes, frame rate and size, value ranges, audio
 *                                       rate, the tokenizer's rules and which outputs are normalised
 *
 * The folder is written under a temporary name beside `out` and renamed into place, so a reader never sees half
 * an export; an earlier export at `out` is replaced, any other non-empty folder is left alone.
 */
import { access, mkdir, open, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type BackendChoice, selectBackend } from "../model/backend.js";
import { type CheckpointInfo, loadCheckpoint, readCheckpointInfo } from "../model/checkpoint.js";
import { type ModelConfig, validateConfig } from "../model/config.js";
import {
  audioEncoderOnnx,
  type ExportedEncoder,
  textEncoderOnnx,
  videoEncoderOnnx,
} from "../model/export-onnx.js";
import { encodeModel, IR_VERSION, OPSET } from "../model/onnx-graph.js";
import { createModel, disposeModel, type VattModel } from "../model/vatt.js";
import { BOS, EOS, loadVocabulary, PAD, UNK, type Vocabulary } from "../operators/tokenize.js";
import { resolveCheckpoint } from "../sinks/checkpoints.js";
import type { PretrainConfig } from "./config.js";
import { MANIFEST } from "./encoders.js";

export { MANIFEST };

export const EXPORT_FORMATS = ["onnx"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  /** A run directory (its last checkpoint), a checkpoint folder, or a model .safetensors file. */
  checkpoint: string;
  /** The folder to write. */
  out: string;
  format?: ExportFormat;
  /** Vocabulary file; default: the run's (its config's data.vocab, else vocab.txt in the run directory). */
  vocab?: string;
  backend?: BackendChoice;
}

export interface ExportResult {
  out: string;
  files: { name: string; bytes: number }[];
  /** False when no vocabulary was found: text.onnx is written, but the word ids have no words. */
  vocabulary: boolean;
  manifest: ExportManifest;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The `__metadata__` of a safetensors file, reading only its header (a checkpoint may be gigabytes). */
async function safetensorsMetadata(file: string): Promise<Record<string, string>> {
  const handle = await open(file, "r");
  try {
    const size = Buffer.alloc(8);
    if ((await handle.read(size, 0, 8, 0)).bytesRead < 8)
      throw new Error("shorter than its 8-byte header size");
    const headerSize = Number(size.readBigUInt64LE(0));
    const { size: fileSize } = await handle.stat();
    if (8 + headerSize > fileSize) throw new Error("header size beyond the end of the file");
    const header = Buffer.alloc(headerSize);
    await handle.read(header, 0, headerSize, 8);
    const parsed = JSON.parse(header.toString("utf8")) as { __metadata__?: Record<string, string> };
    return parsed.__metadata__ ?? {};
  } finally {
    await handle.close();
  }
}

/** The checkpoint's JSON and model, with one-line errors for the ways a file can be wrong. */
async function loadModel(file: string): Promise<{ info: CheckpointInfo; model: VattModel }> {
  let info: CheckpointInfo;
  try {
    info = await readCheckpointInfo(file);
  } catch (err) {
    throw new Error(
      `checkpoint '${file}': its JSON (beside it, same name) cannot be read (${(err as Error).message}); ` +
        "give a checkpoint written by 'vatt pretrain'",
    );
  }
  if (info.format !== "vatt-checkpoint" || !info.config)
    throw new Error(`checkpoint '${file}': its JSON is not a vatt checkpoint's (format '${info.format}')`);
  const config: ModelConfig = info.config;
  validateConfig(config);
  const unreadable = (why: string): Error =>
    new Error(
      `checkpoint '${file}' is not a readable safetensors file (${why}): it may be cut short or corrupt`,
    );
  let metadata: Record<string, string>;
  try {
    metadata = await safetensorsMetadata(file);
  } catch (err) {
    throw unreadable((err as Error).message);
  }
  if (metadata.preset !== undefined && metadata.preset !== config.preset) {
    throw new Error(
      `checkpoint '${file}' holds weights of preset '${metadata.preset}' but its JSON describes preset ` +
        `'${config.preset}': the two files come from different runs; copy both from the same checkpoint folder`,
    );
  }
  const model = createModel(config, 0);
  try {
    await loadCheckpoint(file, model);
  } catch (err) {
    disposeModel(model);
    const message = (err as Error).message;
    if (message.startsWith("safetensors:")) throw unreadable(message.replace("safetensors: ", ""));
    throw new Error(
      `checkpoint '${file}' does not fit its own config (preset '${config.preset}'): ${message}`,
    );
  }
  return { info, model };
}

type Shape = (number | string)[];
interface TensorDoc {
  name: string;
  dtype: string;
  shape: Shape;
}

export interface ExportManifest {
  format: "vatt-onnx-export";
  version: 1;
  opset: number;
  irVersion: number;
  preset: string;
  config: ModelConfig;
  checkpoint: { file: string; step: number | null };
  models: Record<"video" | "audio" | "text", { file: string; inputs: TensorDoc[]; outputs: TensorDoc[] }>;
  video: Record<string, unknown>;
  audio: Record<string, unknown>;
  text: Record<string, unknown>;
  embeddings: Record<string, unknown>;
}

function io(e: ExportedEncoder, file: string): ExportManifest["models"]["video"] {
  const doc = (t: ExportedEncoder["inputs"][number]): TensorDoc => ({
    name: t.name,
    dtype: t.type,
    shape: t.shape,
  });
  return { file, inputs: e.inputs.map(doc), outputs: e.outputs.map(doc) };
}

/**
 * What a user of the folder needs to reproduce vatt's inputs: the evaluation preprocessing (pipeline/embed.ts,
 * operators/eval-views.ts, operators/tokenize.ts) written out as data.
 */
export function exportManifest(
  info: CheckpointInfo,
  file: string,
  encoders: Record<"video" | "audio" | "text", ExportedEncoder>,
  vocab: Vocabulary | undefined,
): ExportManifest {
  const c = info.config;
  const g = c.videoGeometry;
  const runConfig = info.extra.runConfig as PretrainConfig | undefined;
  const fps = runConfig?.data.fps ?? 10;
  const seconds = g.frames / fps;
  const step = info.optimizer?.step ?? (typeof info.extra.step === "number" ? info.extra.step : null);
  return {
    format: "vatt-onnx-export",
    version: 1,
    opset: OPSET,
    irVersion: IR_VERSION,
    preset: c.preset,
    config: c,
    checkpoint: { file: resolve(file), step },
    models: {
      video: io(encoders.video, "video.onnx"),
      audio: io(encoders.audio, "audio.onnx"),
      text: io(encoders.text, "text.onnx"),
    },
    video: {
      frames: g.frames,
      fps,
      fpsSource: runConfig ? "run config" : "default (the checkpoint names no run config)",
      seconds,
      height: g.height,
      width: g.width,
      layout: "batch, frame, row, column, RGB channel (channels last)",
      valueRange: [-1, 1],
      normalisation: "x * 2 / 255 - 1 on 8-bit RGB",
      sampling: `${g.frames} consecutive frames at ${fps} fps`,
      crop: `short side resized (bilinear) to ${Math.min(g.height, g.width)} pixels, then the central ${g.height}x${g.width} crop`,
    },
    audio: {
      samples: c.audioGeometry.samples,
      sampleRate: Math.round(c.audioGeometry.samples / seconds),
      seconds,
      channels: 1,
      valueRange: [-1, 1],
      normalisation:
        "mono float PCM (the average of the channels, as ffmpeg -ac 1), resampled; no other scaling",
      alignment: "the same time window as the video frames",
    },
    text: {
      length: c.textConfig.maxWords,
      dtype: "int32",
      vocabulary: vocab ? "vocab.txt" : null,
      vocabularySize: vocab?.size ?? null,
      modelVocabularySize: c.textConfig.vocabSize,
      tokenizer: {
        steps: [
          "Unicode NFC normalisation",
          "remove every character that is not a letter, number, combining mark or whitespace",
          "lowercase",
          "trim, then split on runs of whitespace",
        ],
        punctuationRegex: "[^\\p{L}\\p{N}\\p{M}\\s]",
        specialIds: { pad: PAD, bos: BOS, eos: EOS, unk: UNK },
        ids: "the id of a word is its 0-based line number in vocab.txt; a word not in it is <unk> (3)",
        layout:
          `the words' ids in order, clipped to ${c.textConfig.maxWords}, padded at the end with <pad> (0); ` +
          "no <bos>/<eos> markers; a row of only padding is allowed",
      },
    },
    embeddings: {
      normalised: false,
      note:
        "Outputs are the common-space embeddings as vatt's own inference returns them, not L2-normalised: " +
        "normalise them and compare by dot product (cosine similarity), video_va with audio_va and video_vt " +
        "with text_vt. 'pooled' is the backbone's aggregation-token feature (before the heads).",
    },
  };
}

/** Writes the files into a fresh temporary folder beside `out`, then renames it to `out`. */
async function writeFolder(out: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const final = resolve(out);
  const existing = await stat(final).catch(() => undefined);
  if (existing) {
    const entries = existing.isDirectory() ? await readdir(final) : undefined;
    if (!entries)
      throw new Error(`--out '${out}' is a file: give a folder to write (it is created when missing)`);
    if (entries.length > 0 && !entries.includes(MANIFEST))
      throw new Error(`--out '${out}' is a folder that holds other files: give an empty or new folder`);
  }
  const temporary = join(dirname(final), `.${basename(final)}.partial-${process.pid}`);
  try {
    await mkdir(dirname(final), { recursive: true });
    await rm(temporary, { recursive: true, force: true });
    await mkdir(temporary);
    for (const [name, data] of Object.entries(files)) await writeFile(join(temporary, name), data);
    // An earlier export (or an empty folder) is replaced; the new one is complete before it goes.
    if (existing) await rm(final, { recursive: true, force: true });
    await rename(temporary, final);
  } catch (err) {
    await rm(temporary, { recursive: true, force: true }).catch(() => {});
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === "EACCES" || e.code === "EPERM" || e.code === "EROFS"
        ? "no permission to write there"
        : e.code === "ENOSPC"
          ? "the disk is full"
          : e.code === "ENOTDIR" || e.code === "EEXIST"
            ? "a part of the path is a file, not a folder"
            : e.message;
    throw new Error(`cannot write --out '${out}': ${why}; choose a folder you can write`);
  }
}

/** Loads the checkpoint and writes the export folder. */
export async function exportOnnx(o: ExportOptions): Promise<ExportResult> {
  const format = o.format ?? "onnx";
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new Error(`unknown export format '${format}': the formats are ${EXPORT_FORMATS.join(", ")}`);
  const { file, runDir } = await resolveCheckpoint(o.checkpoint);
  await selectBackend(o.backend ?? "auto");
  const { info, model } = await loadModel(file);
  try {
    const runConfig = info.extra.runConfig as PretrainConfig | undefined;
    const vocabPath = o.vocab ?? runConfig?.data.vocab ?? join(runDir, "vocab.txt");
    if (o.vocab && !(await exists(o.vocab))) throw new Error(`--vocab '${o.vocab}' does not exist`);
    const vocab = (await exists(vocabPath)) ? await loadVocabulary(vocabPath) : undefined;
    if (vocab && vocab.size > model.config.textConfig.vocabSize) {
      throw new Error(
        `vocabulary '${vocabPath}' has ${vocab.size} words but the model's table holds ` +
          `${model.config.textConfig.vocabSize}: give the vocabulary the run was trained with (--vocab)`,
      );
    }
    const encoders = {
      video: videoEncoderOnnx(model),
      audio: audioEncoderOnnx(model),
      text: textEncoderOnnx(model),
    };
    const manifest = exportManifest(info, file, encoders, vocab);
    const files: Record<string, Uint8Array | string> = {
      "video.onnx": encodeModel(encoders.video.model),
      "audio.onnx": encodeModel(encoders.audio.model),
      "text.onnx": encodeModel(encoders.text.model),
      [MANIFEST]: `${JSON.stringify(manifest, null, 2)}\n`,
    };
    if (vocab) files["vocab.txt"] = vocab.toText();
    await writeFolder(o.out, files);
    return {
      out: o.out,
      files: Object.entries(files).map(([name, data]) => ({
        name,
        bytes: typeof data === "string" ? Buffer.byteLength(data) : data.byteLength,
      })),
      vocabulary: vocab !== undefined,
      manifest,
    };
  } finally {
    disposeModel(model);
  }
}
