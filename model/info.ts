/**
 * Parameter counts and inference FLOPs computed analytically from a ModelConfig: pure arithmetic, no tensors.
 *
 * FLOPs follow the reference's convention: 2 x MACs of every dense/patch layer, plus 2 N^2 d per layer for the two
 * attention products (N counts the aggregation token). The patch projection is charged for every token of the clip
 * (DropToken comes after it), which is how the paper's Tables 13/14 behave. Norms, softmax and GELU are not counted.
 * The test suite checks these counts against the variables of the built network, so the two cannot drift.
 */
import {
  audioTokens,
  keptTokens,
  type ModelConfig,
  type TransformerSize,
  videoGrid,
  videoTokens,
  voxelSize,
} from "./config.js";

/** Trainable parameters of one pre-LN block (biases everywhere) of the video/audio Transformer. */
export function blockParams(s: TransformerSize): number {
  const d = s.hidden;
  const m = s.mlp;
  return 2 * d + 4 * (d * d + d) + 2 * d + (d * m + m) + (m * d + d);
}

/** L blocks plus the final LayerNorm. */
export function encoderParams(s: TransformerSize): number {
  return s.layers * blockParams(s) + 2 * s.hidden;
}

/** Patch projection, per-axis positional tables, their LayerNorm and the aggregation token. */
export function videoTokenizerParams(c: ModelConfig, d: number): number {
  const [t, h, w] = videoGrid(c.videoGeometry);
  return voxelSize(c.videoGeometry) * d + d + (t + h + w) * d + 2 * d + d;
}

export function audioTokenizerParams(c: ModelConfig, d: number): number {
  return c.audioGeometry.patch * d + d + audioTokens(c.audioGeometry) * d + 2 * d + d;
}

/** T5-style text encoder: embedding, aggregation vector, pre-projection, blocks without biases, shared rel. bias. */
export function textBackboneParams(c: ModelConfig): number {
  const { vocabSize, embedDim, relativeBuckets } = c.textConfig;
  const s = c.text;
  const d = s.hidden;
  const block = d + 4 * d * d + 2 * d + 2 * d * s.mlp;
  return vocabSize * embedDim + embedDim + embedDim * d + relativeBuckets * s.heads + s.layers * block + d;
}

/** VATT-MA text tokenizer: embedding, Dense(d, no bias), temporal table + LayerNorm, aggregation token. */
export function sharedTextTokenizerParams(c: ModelConfig, d: number): number {
  const { vocabSize, embedDim, maxWords } = c.textConfig;
  return vocabSize * embedDim + embedDim * d + maxWords * d + 2 * d + d;
}

/** Heads to S_va / S_vt (trainable only; BatchNorm moving statistics are counted as state). */
export function headParams(c: ModelConfig): { trainable: number; state: number } {
  const { vaDim: va, vtDim: vt } = c;
  const dv = c.video.hidden;
  const da = c.shared ? dv : c.audio.hidden;
  const dt = c.shared ? dv : c.text.hidden;
  const videoVa = dv * va + 2 * va + va * va + 2 * va;
  const videoVt = va * vt + 2 * vt;
  const audioVa = da * va + va;
  const textVt = dt * vt + vt;
  return { trainable: videoVa + videoVt + audioVa + textVt, state: 2 * (2 * va) + 2 * vt };
}

export interface ParamCounts {
  video: number;
  audio: number;
  text: number;
  /** The shared backbone of VATT-MA (0 otherwise). */
  shared: number;
  heads: number;
  /** A linear classifier on the video's pooled feature (0 unless classes > 0). */
  classifier: number;
  total: number;
  /** Non-trainable BatchNorm moving statistics. */
  state: number;
}

export function paramCounts(c: ModelConfig, classes = 0): ParamCounts {
  const heads = headParams(c);
  const classifier = classes > 0 ? c.video.hidden * classes + classes : 0;
  let video: number;
  let audio: number;
  let text: number;
  let shared = 0;
  if (c.shared) {
    const d = c.video.hidden;
    shared = encoderParams(c.video);
    video = videoTokenizerParams(c, d);
    audio = audioTokenizerParams(c, d);
    text = sharedTextTokenizerParams(c, d);
  } else {
    video = videoTokenizerParams(c, c.video.hidden) + encoderParams(c.video);
    audio = audioTokenizerParams(c, c.audio.hidden) + encoderParams(c.audio);
    text = textBackboneParams(c);
  }
  const total = video + audio + text + shared + heads.trainable + classifier;
  return { video, audio, text, shared, heads: heads.trainable, classifier, total, state: heads.state };
}

/** The video backbone alone (what the paper's Table 1 counts, with a classifier): tokenizer + encoder. */
export function videoBackboneParams(c: ModelConfig): number {
  return videoTokenizerParams(c, c.video.hidden) + encoderParams(c.video);
}

/** FLOPs of L encoder layers over n tokens (n includes the aggregation token). */
export function encoderFlops(s: TransformerSize, n: number): number {
  const d = s.hidden;
  const dense = 2 * n * (4 * d * d + 2 * d * s.mlp);
  const attention = 2 * n * n * d;
  return s.layers * (dense + attention);
}

export interface FlopCounts {
  video: number;
  audio: number;
  text: number;
  heads: number;
  classifier: number;
  total: number;
  /** Tokens entering each Transformer (aggregation token included). */
  tokens: { video: number; audio: number; text: number };
}

/** Inference FLOPs of one clip (one caption) at a given DropToken rate (0 = inference as in the paper). */
export function inferenceFlops(c: ModelConfig, dropRate = 0, classes = 0): FlopCounts {
  const nv = videoTokens(c.videoGeometry);
  const na = audioTokens(c.audioGeometry);
  const words = c.textConfig.maxWords;
  const videoSize = c.video;
  const audioSize = c.shared ? c.video : c.audio;
  const textSize = c.shared ? c.video : c.text;
  const tokens = {
    video: keptTokens(nv, dropRate) + 1,
    audio: keptTokens(na, dropRate) + 1,
    text: words + 1,
  };
  const video =
    2 * nv * voxelSize(c.videoGeometry) * videoSize.hidden + encoderFlops(videoSize, tokens.video);
  const audio = 2 * na * c.audioGeometry.patch * audioSize.hidden + encoderFlops(audioSize, tokens.audio);
  // The separate text backbone projects the aggregation vector too; VATT-MA prepends it after the projection.
  const projected = c.shared ? words : words + 1;
  const text = 2 * projected * c.textConfig.embedDim * textSize.hidden + encoderFlops(textSize, tokens.text);
  const { vaDim: va, vtDim: vt } = c;
  const heads =
    2 * (videoSize.hidden * va + va * va + va * vt) + 2 * audioSize.hidden * va + 2 * textSize.hidden * vt;
  const classifier = 2 * videoSize.hidden * classes;
  return { video, audio, text, heads, classifier, total: video + audio + text + heads + classifier, tokens };
}

export interface ModelInfoReport {
  preset: string;
  sizes: { video: string; audio: string; text: string; shared: boolean };
  input: { video: string; audioSamples: number; textWords: number };
  dropRate: number;
  classes: number;
  params: ParamCounts;
  /** The video backbone alone, and with the classifier (the paper's Table 1 figure when classes = 600). */
  videoBackboneParams: number;
  videoBackboneWithClassifierParams: number;
  gflops: { video: number; audio: number; text: number; heads: number; classifier: number; total: number };
  tokens: FlopCounts["tokens"];
}

/** Everything `vatt model-info` prints, as one plain object. */
export function modelInfoReport(c: ModelConfig, dropRate = 0, classes = 0): ModelInfoReport {
  const params = paramCounts(c, classes);
  const flops = inferenceFlops(c, dropRate, classes);
  const g = c.videoGeometry;
  const giga = (x: number) => x / 1e9;
  const backbone = videoBackboneParams(c);
  return {
    preset: c.preset,
    sizes: { video: c.video.name, audio: c.audio.name, text: c.text.name, shared: c.shared },
    input: {
      video: `${g.frames}x${g.height}x${g.width}`,
      audioSamples: c.audioGeometry.samples,
      textWords: c.textConfig.maxWords,
    },
    dropRate,
    classes,
    params,
    videoBackboneParams: backbone,
    videoBackboneWithClassifierParams: backbone + params.classifier,
    gflops: {
      video: giga(flops.video),
      audio: giga(flops.audio),
      text: giga(flops.text),
      heads: giga(flops.heads),
      classifier: giga(flops.classifier),
      total: giga(flops.total),
    },
    tokens: flops.tokens,
  };
}

/** The wasm backend's whole heap: 32-bit addresses, 4 GiB at most, for weights, optimiser state and activations. */
const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Why `c` cannot be trained on the wasm backend, when its weights, gradients and two Adam moments (16 bytes a
 * parameter) already take more than half of the heap, leaving too little for a step's activations and the engine's
 * copies (BBS, 194 M parameters and 2.9 GiB of them, ran out of it as "memory access out of bounds"); undefined when it
 * may fit.
 */
export function wasmTrainingMemoryProblem(c: ModelConfig, backend: string): string | undefined {
  if (backend !== "wasm") return undefined;
  const params = paramCounts(c).total;
  const bytes = 16 * params;
  if (bytes <= 0.5 * WASM_HEAP_BYTES) return undefined;
  const gb = (x: number) => `${(x / 2 ** 30).toFixed(1)} GiB`;
  return (
    `preset ${c.preset} (${(params / 1e6).toFixed(0)} M parameters) needs ${gb(bytes)} for its weights, gradients ` +
    `and Adam moments before any activation, and the wasm backend has ${gb(WASM_HEAP_BYTES)} in all: train it with ` +
    "the node or node-gpu backend (@tensorflow/tfjs-node or -node-gpu, --backend node) or pick a smaller preset"
  );
}
