/**
 * A trained model's three encoders behind one small interface, whichever engine runs them: TensorFlow.js on a
 * checkpoint (a run directory, a checkpoint folder or a .safetensors file), or ONNX Runtime on a `vatt export`
 * folder (no TensorFlow.js loaded at all). Both compute the same inference forward (every token, BatchNorm moving
 * statistics, no dropout); the export's test holds them equal within 1e-4.
 *
 * Inputs are batches laid out as the export's vatt-export.json describes: video [n, T, H, W, 3] in [-1, 1], audio
 * [n, samples], text ids [n, words]. Outputs are the raw common-space embeddings, row-major, not normalised.
 */
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelConfig } from "../model/config.js";
import { requireOnnxRuntime } from "../native/onnxruntime.js";
import { loadVocabulary, type Vocabulary } from "../operators/tokenize.js";
import { resolveCheckpoint } from "../sinks/checkpoints.js";
import type { PretrainConfig } from "./config.js";

/** The notes of an export folder (written by pipeline/export.ts) and its three encoders: video, audio, text. */
export const MANIFEST = "vatt-export.json";
export const EXPORT_FILES = ["video.onnx", "audio.onnx", "text.onnx"] as const;

/** What the encoders take: the clip geometry and text length of the model. */
export interface EncoderInputs {
  preset: string;
  frames: number;
  height: number;
  width: number;
  fps: number;
  samples: number;
  sampleRate: number;
  words: number;
  /** Widths of the video-audio (S_va) and video-text (S_vt) spaces. */
  vaDim: number;
  vtDim: number;
}

export interface Encoders {
  readonly engine: "tfjs" | "onnxruntime";
  /** Where the weights came from (the checkpoint file or the export folder). */
  readonly source: string;
  readonly inputs: EncoderInputs;
  /** The model's vocabulary, when the run or export has one (text needs it). */
  readonly vocabulary: Vocabulary | undefined;
  video(batch: Float32Array, n: number): Promise<{ va: Float32Array; vt: Float32Array }>;
  audio(batch: Float32Array, n: number): Promise<Float32Array>;
  text(ids: Int32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function inputsOf(c: ModelConfig, fps: number): EncoderInputs {
  const g = c.videoGeometry;
  const seconds = g.frames / fps;
  return {
    preset: c.preset,
    frames: g.frames,
    height: g.height,
    width: g.width,
    fps,
    samples: c.audioGeometry.samples,
    sampleRate: Math.round(c.audioGeometry.samples / seconds),
    words: c.textConfig.maxWords,
    vaDim: c.vaDim,
    vtDim: c.vtDim,
  };
}

/** Opens a checkpoint (run directory, checkpoint folder, .safetensors) or an export folder. */
export async function openEncoders(path: string, opts: { vocab?: string } = {}): Promise<Encoders> {
  if (await exists(join(path, MANIFEST))) return openExport(path, opts);
  return openCheckpoint(path, opts);
}

async function openCheckpoint(path: string, opts: { vocab?: string }): Promise<Encoders> {
  const { file, runDir } = await resolveCheckpoint(path);
  // TensorFlow.js loads only here: an export folder never pays for it.
  const [
    { selectBackend },
    { loadCheckpoint, readCheckpointInfo },
    { embed },
    { createModel, disposeModel },
  ] = await Promise.all([
    import("../model/backend.js"),
    import("../model/checkpoint.js"),
    import("../model/step.js"),
    import("../model/vatt.js"),
  ]);
  await selectBackend("auto");
  const info = await readCheckpointInfo(file);
  const runConfig = info.extra.runConfig as PretrainConfig | undefined;
  const model = createModel(info.config, 0);
  try {
    await loadCheckpoint(file, model);
  } catch (err) {
    disposeModel(model);
    throw err;
  }
  const vocabPath = opts.vocab ?? runConfig?.data.vocab ?? join(runDir, "vocab.txt");
  const vocabulary = (await exists(vocabPath)) ? await loadVocabulary(vocabPath) : undefined;
  const inputs = inputsOf(info.config, runConfig?.data.fps ?? 10);
  const videoShape = (n: number) =>
    [n, inputs.frames, inputs.height, inputs.width, 3] as [number, number, number, number, number];
  return {
    engine: "tfjs",
    source: file,
    inputs,
    vocabulary,
    async video(batch, n) {
      const e = embed(model, { size: n, video: batch, videoShape: videoShape(n) });
      return { va: e.videoVa!, vt: e.videoVt! };
    },
    async audio(batch, n) {
      return embed(model, { size: n, audio: batch }).audioVa!;
    },
    async text(ids, n) {
      return embed(model, { size: n, textIds: ids }).textVt!;
    },
    async close() {
      disposeModel(model);
    },
  };
}

interface OrtTensor {
  data: Float32Array;
  dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  InferenceSession: { create(path: string): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array | Int32Array, dims: number[]) => unknown;
}

async function openExport(dir: string, opts: { vocab?: string }): Promise<Encoders> {
  const manifestPath = join(dir, MANIFEST);
  let manifest: { format?: string; config?: ModelConfig; video?: { fps?: number } };
  try {
    manifest = JSON.parse(await readFile(manifestPath, "utf8"));
  } catch (err) {
    throw new Error(`${manifestPath}: not readable JSON (${(err as Error).message}); export the model again`);
  }
  if (manifest.format !== "vatt-onnx-export" || !manifest.config)
    throw new Error(`${manifestPath}: not a vatt ONNX export (no format/config); export the model again`);
  for (const name of EXPORT_FILES) {
    if (!(await exists(join(dir, name))))
      throw new Error(`export folder '${dir}' has no ${name}: export the model again with 'vatt export'`);
  }
  const ort = requireOnnxRuntime<Ort>("onnxruntime-node");
  const [video, audio, text] = await Promise.all(
    EXPORT_FILES.map((name) => ort.InferenceSession.create(join(dir, name))),
  );
  const vocabPath = opts.vocab ?? join(dir, "vocab.txt");
  const vocabulary = (await exists(vocabPath)) ? await loadVocabulary(vocabPath) : undefined;
  const inputs = inputsOf(manifest.config, manifest.video?.fps ?? 10);
  return {
    engine: "onnxruntime",
    source: dir,
    inputs,
    vocabulary,
    async video(batch, n) {
      const feeds = {
        video: new ort.Tensor("float32", batch, [n, inputs.frames, inputs.height, inputs.width, 3]),
      };
      const out = await video.run(feeds);
      return { va: out.video_va.data, vt: out.video_vt.data };
    },
    async audio(batch, n) {
      return (await audio.run({ audio: new ort.Tensor("float32", batch, [n, inputs.samples]) })).audio_va
        .data;
    },
    async text(ids, n) {
      return (await text.run({ tokens: new ort.Tensor("int32", ids, [n, inputs.words]) })).text_vt.data;
    },
    async close() {
      await Promise.all([video.release(), audio.release(), text.release()]);
    },
  };
}
