/**
 * The inference encoders of a VattModel as three standalone ONNX graphs (opset 17, model/onnx-graph.ts), each the
 * exact computation of model/step.ts `embed` for one modality: every token (no DropToken), no dropout, BatchNorm
 * with its moving statistics. Outputs are the common-space embeddings as `embed` returns them: NOT L2-normalised
 * (the loss and retrieval normalise), plus `pooled`, the backbone's aggregation-token feature.
 *
 *   video.onnx  video  float32 [batch, T, H, W, 3] in [-1, 1]  ->  video_va [batch, va], video_vt [batch, vt], pooled
 *   audio.onnx  audio  float32 [batch, samples] (mono)         ->  audio_va [batch, va], pooled
 *   text.onnx   tokens int32   [batch, maxWords], 0 = padding  ->  text_vt [batch, vt], pooled
 *
 * Voxels are cut by Reshape + Transpose (token order t, h, w; values dt, dh, dw, channel, as model/tokens.ts);
 * everything that depends only on weights is folded into constants here with the model's own functions: the
 * LayerNorm'ed positional embedding of every token and the text tower's relative position bias for its fixed
 * length. LayerNorm is LayerNormalization, RMS norm ReduceMean/Sqrt/Div, GELU the exact erf form (as model/ops.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig, TransformerSize } from "./config.js";
import { videoGrid, videoTokens, voxelSize } from "./config.js";
import { pooledWidths } from "./heads.js";
import { GraphBuilder, type onnxTypes } from "./onnx-graph.js";
import { layerNorm } from "./ops.js";
import { relativeBucketTable } from "./text.js";
import {
  AUDIO_TABLES,
  allAudioTokens,
  allVideoTokens,
  positionalEmbedding,
  VIDEO_TABLES,
  videoPatches,
} from "./tokens.js";
import type { VattModel } from "./vatt.js";

/** What padding adds to attention scores, as model/text.ts MASKED. */
const MASKED = -1e9;

/** One exported encoder: its graph and what the report needs to know about it. */
export interface ExportedEncoder {
  model: onnxTypes.IModelProto;
  inputs: { name: string; type: string; shape: (number | string)[] }[];
  outputs: { name: string; type: string; shape: (number | string)[] }[];
  weights: number;
  operators: Record<string, number>;
}

/** A graph under construction with the model whose weights it reads; each weight becomes one initializer. */
class Exporter {
  readonly g: GraphBuilder;
  private readonly weights = new Map<string, string>();

  constructor(
    readonly m: VattModel,
    name: string,
  ) {
    this.g = new GraphBuilder(name);
  }

  get c(): ModelConfig {
    return this.m.config;
  }

  /** The initializer holding parameter (or BatchNorm state) `name`, added on first use. */
  weight(name: string): string {
    const known = this.weights.get(name);
    if (known) return known;
    const v = this.m.params[name] ?? this.m.state[name];
    if (!v) throw new Error(`the model has no weight '${name}'`);
    const id = this.g.floats(name, Float32Array.from(v.dataSync() as Float32Array), v.shape.slice());
    this.weights.set(name, id);
    return id;
  }

  /** A constant computed here (folded positions, biases) as an initializer. */
  constant(name: string, t: tf.Tensor): string {
    return this.g.floats(name, Float32Array.from(t.dataSync() as Float32Array), t.shape.slice());
  }

  dense(x: string, prefix: string, bias: boolean): string {
    const y = this.g.matMul(x, this.weight(`${prefix}/kernel`), `${prefix}/matmul`);
    return bias ? this.g.add(y, this.weight(`${prefix}/bias`), `${prefix}/out`) : y;
  }

  /** Exact GELU: x * 0.5 * (1 + erf(x / sqrt 2)). */
  gelu(x: string, out: string): string {
    const g = this.g;
    const erf = g.unary("Erf", g.mul(x, g.scalar(Math.SQRT1_2), `${out}/scaled`), `${out}/erf`);
    const cdf = g.mul(g.add(erf, g.scalar(1), `${out}/1+erf`), g.scalar(0.5), `${out}/cdf`);
    return g.mul(x, cdf, out);
  }

  layerNorm(x: string, prefix: string): string {
    const p = (n: string): string => this.weight(`${prefix}/${n}`);
    return this.g.layerNormalization(x, p("gamma"), p("beta"), this.c.layerNormEps, `${prefix}/out`);
  }

  /** T5's norm: x / sqrt(mean(x^2) + eps) * scale. */
  rmsNorm(x: string, scale: string, out: string): string {
    const g = this.g;
    const meanSquare = g.reduceMean(g.mul(x, x, `${out}/square`), [-1], `${out}/mean_square`);
    const rms = g.unary(
      "Sqrt",
      g.add(meanSquare, g.scalar(this.c.layerNormEps), `${out}/+eps`),
      `${out}/rms`,
    );
    return g.mul(g.div(x, rms, `${out}/normed`), this.weight(scale), out);
  }

  /** softmax(q k^T * scale + bias) v over heads; q, k, v [B, N, d] -> [B, N, d]. `bias` broadcasts to [B, H, N, N]. */
  attention(
    q: string,
    k: string,
    v: string,
    s: TransformerSize,
    scale: number,
    bias: string | undefined,
    out: string,
  ): string {
    const g = this.g;
    const dh = s.hidden / s.heads;
    const heads = (x: string, perm: number[], name: string): string =>
      g.transpose(g.reshape(x, [0, 0, s.heads, dh], `${name}/split`), perm, `${name}/heads`);
    const qh = heads(q, [0, 2, 1, 3], `${out}/q`);
    const kt = heads(k, [0, 2, 3, 1], `${out}/k`);
    const vh = heads(v, [0, 2, 1, 3], `${out}/v`);
    let scores = g.matMul(qh, kt, `${out}/scores`);
    if (scale !== 1) scores = g.mul(scores, g.scalar(scale), `${out}/scaled`);
    if (bias) scores = g.add(scores, bias, `${out}/biased`);
    const attended = g.matMul(g.softmax(scores, -1, `${out}/probs`), vh, `${out}/attended`);
    return g.reshape(g.transpose(attended, [0, 2, 1, 3], `${out}/joined`), [0, 0, s.hidden], out);
  }

  /** Prepends the learned vector `agg` ([width]) to every sequence of x [B, N, width]. */
  prependAggregation(x: string, agg: string, width: number, out: string): string {
    const g = this.g;
    const value = this.m.params[agg];
    const token = g.floats(agg, Float32Array.from(value.dataSync() as Float32Array), [1, 1, width]);
    const batch = g.slice(g.unary("Shape", x, `${out}/shape`), [0], [1], [0], `${out}/batch`);
    const shape = g.concat([batch, g.int64s([1, width])], 0, `${out}/agg_shape`);
    return g.concat([g.expand(token, shape, `${out}/agg`), x], 1, out);
  }

  /** x [B, N, d] -> x[:, 0] [B, d] */
  firstToken(x: string, out: string): string {
    return this.g.gather(x, this.g.int64s([0], []), 1, out);
  }

  /** One pre-LN block of the video/audio/shared Transformer (model/transformer.ts encoderBlock). */
  block(x: string, l: string, s: TransformerSize, bias?: string): string {
    const g = this.g;
    const h = this.layerNorm(x, `${l}/ln1`);
    const [q, k, v] = ["q", "k", "v"].map((w) => this.dense(h, `${l}/attn/${w}`, true));
    const attended = this.attention(q, k, v, s, 1 / Math.sqrt(s.hidden / s.heads), bias, `${l}/attn`);
    const x1 = g.add(x, this.dense(attended, `${l}/attn/o`, true), `${l}/attn/residual`);
    const h2 = this.layerNorm(x1, `${l}/ln2`);
    const mlp = this.dense(
      this.gelu(this.dense(h2, `${l}/mlp/fc1`, true), `${l}/mlp/gelu`),
      `${l}/mlp/fc2`,
      true,
    );
    return g.add(x1, mlp, `${l}/out`);
  }

  /** All blocks and the final LayerNorm, then the aggregation token: [B, N, d] -> [B, d]. */
  encoderPooled(x: string, prefix: string, s: TransformerSize, bias?: string): string {
    let h = x;
    for (let i = 0; i < s.layers; i++) h = this.block(h, `${prefix}/layer_${i}`, s, bias);
    return this.firstToken(this.layerNorm(h, `${prefix}/final_ln`), `${prefix}/pooled`);
  }

  /** Patches [B, n, patch] -> pooled [B, d] through the modality's tokenizer and backbone. */
  backbone(patches: string, modality: "video" | "audio", positions: tf.Tensor): string {
    const c = this.c;
    const [prefix, size] = c.shared
      ? ["shared", c.video]
      : [modality, modality === "video" ? c.video : c.audio];
    const projected = this.dense(patches, `${modality}/patch`, true);
    const pos = this.constant(`${modality}/pos/embedding`, positions);
    const tokens = this.g.add(projected, pos, `${modality}/tokens`);
    const x = this.prependAggregation(tokens, `${modality}/agg`, size.hidden, `${modality}/input`);
    return this.encoderPooled(x, prefix, size);
  }

  bn(x: string, name: string): string {
    const w = (n: string): string => this.weight(`${name}/${n}`);
    const stats = {
      scale: w("gamma"),
      bias: w("beta"),
      mean: w("moving_mean"),
      variance: w("moving_variance"),
    };
    return this.g.batchNormalization(x, stats, this.c.batchNormEps, `${name}/out`);
  }
}

function finish(e: Exporter, doc: string, outputs: Record<string, [string, number]>): ExportedEncoder {
  const g = e.g;
  const out: ExportedEncoder["outputs"] = [];
  for (const [name, [value, width]] of Object.entries(outputs)) {
    const spec = { name, type: "float32" as const, shape: ["batch", width] };
    g.output(value, spec);
    out.push(spec);
  }
  const metadata = { preset: e.c.preset, normalised: "false" };
  return {
    model: g.model(doc, metadata),
    inputs: g.inputSpecs(),
    outputs: out,
    weights: g.weightCount,
    operators: g.operatorCounts(),
  };
}

/** LN(sum of positional table rows) for every token in order, [n, d], by model/tokens.ts itself. */
function foldedPositions(m: VattModel, modality: "video" | "audio", positions: Int32Array[]): tf.Tensor {
  const tables = modality === "video" ? VIDEO_TABLES : AUDIO_TABLES;
  return positionalEmbedding(m.params, modality, tables, positions, m.config.layerNormEps);
}

export function videoEncoderOnnx(m: VattModel): ExportedEncoder {
  const c = m.config;
  const g = c.videoGeometry;
  const [nt, nh, nw] = videoGrid(g);
  const n = videoTokens(g);
  const e = new Exporter(m, "vatt_video");
  const video = e.g.input({
    name: "video",
    type: "float32",
    shape: ["batch", g.frames, g.height, g.width, 3],
  });
  const grid = e.g.reshape(
    video,
    [0, nt, g.patchFrames, nh, g.patchHeight, nw, g.patchWidth, 3],
    "video/grid",
  );
  const voxels = e.g.transpose(grid, [0, 1, 3, 5, 2, 4, 6, 7], "video/voxels");
  const patches = e.g.reshape(voxels, [0, n, voxelSize(g)], "video/patches");
  // Each token's (t, h, w) as model/tokens.ts lays them out; the patch values of one empty clip are never written.
  const { positions } = videoPatches(
    new Float32Array(g.frames * g.height * g.width * 3),
    1,
    g,
    allVideoTokens(g),
  );
  const pooled = tf.tidy(() => {
    const pos = foldedPositions(m, "video", positions);
    return e.backbone(patches, "video", pos);
  });
  // Heads (model/heads.ts videoHeads) with the moving statistics.
  let h = e.bn(e.dense(pooled, "heads/video_va/fc1", false), "heads/video_va/bn1");
  h = e.g.unary("Relu", h, "heads/video_va/relu");
  const va = e.bn(e.dense(h, "heads/video_va/fc2", false), "heads/video_va/bn2");
  const vaRelu = e.g.unary("Relu", va, "heads/video_vt/relu");
  const vt = e.bn(e.dense(vaRelu, "heads/video_vt/fc", false), "heads/video_vt/bn");
  return finish(e, "VATT video encoder: clip in [-1, 1] -> S_va and S_vt embeddings (not normalised)", {
    video_va: [va, c.vaDim],
    video_vt: [vt, c.vtDim],
    pooled: [pooled, pooledWidths(c).video],
  });
}

export function audioEncoderOnnx(m: VattModel): ExportedEncoder {
  const c = m.config;
  const a = c.audioGeometry;
  const e = new Exporter(m, "vatt_audio");
  const audio = e.g.input({ name: "audio", type: "float32", shape: ["batch", a.samples] });
  const patches = e.g.reshape(audio, [0, a.samples / a.patch, a.patch], "audio/patches");
  const pooled = tf.tidy(() =>
    e.backbone(patches, "audio", foldedPositions(m, "audio", [allAudioTokens(a)])),
  );
  const va = e.dense(pooled, "heads/audio_va/fc", true);
  return finish(e, "VATT audio encoder: mono waveform -> S_va embedding (not normalised)", {
    audio_va: [va, c.vaDim],
    pooled: [pooled, pooledWidths(c).audio],
  });
}

/** Layer 0's relative position bias for `length` positions, [1, heads, length, length] (model/text.ts). */
function relativeBiasConstant(m: VattModel, length: number): tf.Tensor {
  const { relativeBuckets, relativeMaxDistance } = m.config.textConfig;
  const heads = m.config.text.heads;
  const table = m.params["text/layer_0/attn/relative_bias"].dataSync(); // [buckets, heads]
  const buckets = relativeBucketTable(length, relativeBuckets, relativeMaxDistance);
  const out = new Float32Array(heads * length * length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < length * length; i++) out[h * length * length + i] = table[buckets[i] * heads + h];
  }
  return tf.tensor4d(out, [1, heads, length, length]);
}

/** The T5-style text tower (model/text.ts textBackbone) from word embeddings [B, W, e] to pooled [B, d]. */
function t5Pooled(e: Exporter, words: string, bias: string): string {
  const c = e.c;
  const s = c.text;
  const g = e.g;
  const withAgg = e.prependAggregation(words, "text/agg", c.textConfig.embedDim, "text/input");
  let x = e.gelu(e.dense(withAgg, "text/pre_proj", false), "text/pre_proj/gelu");
  for (let i = 0; i < s.layers; i++) {
    const l = `text/layer_${i}`;
    const h = e.rmsNorm(x, `${l}/attn_norm/scale`, `${l}/attn_norm`);
    const [q, k, v] = ["q", "k", "v"].map((w) => e.dense(h, `${l}/attn/${w}`, false));
    const attended = e.dense(e.attention(q, k, v, s, 1, bias, `${l}/attn`), `${l}/attn/o`, false);
    x = g.add(x, attended, `${l}/attn/residual`);
    const h2 = e.layerNorm(x, `${l}/ffn_ln`);
    const ffn = e.dense(e.gelu(e.dense(h2, `${l}/ffn/wi`, false), `${l}/ffn/gelu`), `${l}/ffn/wo`, false);
    x = g.add(x, ffn, `${l}/out`);
  }
  return e.firstToken(e.rmsNorm(x, "text/final_norm/scale", "text/final_norm"), "text/pooled");
}

export function textEncoderOnnx(m: VattModel): ExportedEncoder {
  const c = m.config;
  const words = c.textConfig.maxWords;
  const e = new Exporter(m, "vatt_text");
  const g = e.g;
  const tokens = g.input({ name: "tokens", type: "int32", shape: ["batch", words] });
  const embedded = g.gather(e.weight("text/embedding"), tokens, 0, "text/words");
  // Padding mask [B, 1, 1, 1 + W]: -1e9 at padded words, 0 at the aggregation position and real words.
  const isPad = g.castToFloat(g.equal(tokens, g.int32s("const/i32/pad", [0], [])), "text/is_pad");
  const padBias = g.pad(
    g.mul(isPad, g.scalar(MASKED), "text/pad_bias"),
    [0, 1, 0, 0],
    g.scalar(0),
    "text/mask",
  );
  const mask = g.unsqueeze(padBias, [1, 2], "text/mask_bias");
  let pooled: string;
  if (c.shared) {
    // VATT-MA (model/text.ts sharedTextTokens): GELU(words W) + LN(positions), aggregation token, shared backbone.
    const projected = e.gelu(e.dense(embedded, "text/pre_proj", false), "text/pre_proj/gelu");
    const pos = tf.tidy(() =>
      e.constant(
        "text/pos/embedding",
        layerNorm(
          m.params["text/pos/temporal"],
          m.params["text/pos/ln/gamma"],
          m.params["text/pos/ln/beta"],
          c.layerNormEps,
        ),
      ),
    );
    const x = e.prependAggregation(
      g.add(projected, pos, "text/tokens"),
      "text/agg",
      c.video.hidden,
      "text/input",
    );
    pooled = e.encoderPooled(x, "shared", c.video, mask);
  } else {
    const relative = tf.tidy(() => e.constant("text/relative_bias", relativeBiasConstant(m, words + 1)));
    pooled = t5Pooled(e, embedded, g.add(relative, mask, "text/attention_bias"));
  }
  const vt = e.dense(pooled, "heads/text_vt/fc", true);
  return finish(e, "VATT text encoder: word ids (0 = padding) -> S_vt embedding (not normalised)", {
    text_vt: [vt, c.vtDim],
    pooled: [pooled, pooledWidths(c).text],
  });
}
