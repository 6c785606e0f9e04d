/**
 * The text backbone: word embedding -> learned aggregation vector prepended -> Dense(d, no bias, GELU) -> a T5-style
 * encoder: no biases on q/k/v/o or the FFN, no sqrt scaling of the scores, RMS norm before attention, LayerNorm
 * before the FFN (Dense -> GELU -> dropout -> Dense), a bidirectional relative position bias (32 buckets, max
 * distance 64) owned by layer 0 and reused by every layer, padding (word id 0) masked, final RMS norm.
 * The pooled feature is the aggregation position's output.
 *
 * Also the VATT-MA text tokenizer, which feeds the shared video-style backbone instead.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig, TextConfig } from "./config.js";
import {
  dense,
  dropout,
  type ForwardContext,
  firstToken,
  gatherRows,
  gelu,
  layerNorm,
  prependToken,
  rmsNorm,
} from "./ops.js";
import { GLOROT, ONES, type ParamBuilder, type ParamMap } from "./params.js";
import { buildDense, buildLayerNorm, fusedBlock, multiHeadAttention } from "./transformer.js";

/** What padding adds to attention scores: a large negative number, as the reference. */
export const MASKED = -1e9;

/**
 * T5's bucket of a relative position (memory - query). Bidirectional: half the buckets for keys after the query.
 * Exact buckets below max_exact = buckets/4, then logarithmic up to maxDistance, clipped to the last bucket.
 */
export function relativePositionBucket(relative: number, buckets: number, maxDistance: number): number {
  const half = buckets / 2;
  let bucket = relative > 0 ? half : 0;
  const n = Math.abs(relative);
  const maxExact = half / 2;
  if (n < maxExact) return bucket + n;
  const large =
    maxExact + Math.trunc((Math.log(n / maxExact) / Math.log(maxDistance / maxExact)) * (half - maxExact));
  bucket += Math.min(large, half - 1);
  return bucket;
}

/** Bucket of every (query, key) pair of a sequence of `length`, row-major [length * length]. */
export function relativeBucketTable(length: number, buckets: number, maxDistance: number): Int32Array {
  const out = new Int32Array(length * length);
  for (let q = 0; q < length; q++) {
    for (let k = 0; k < length; k++)
      out[q * length + k] = relativePositionBucket(k - q, buckets, maxDistance);
  }
  return out;
}

/** Additive attention mask [B, 1, 1, 1 + W]: 0 for the aggregation position and real words, -1e9 for padding. */
export function paddingMaskBias(ids: Int32Array, sequences: number, words: number): tf.Tensor {
  const bias = new Float32Array(sequences * (words + 1));
  for (let s = 0; s < sequences; s++) {
    for (let w = 0; w < words; w++) if (ids[s * words + w] === 0) bias[s * (words + 1) + 1 + w] = MASKED;
  }
  return tf.tensor4d(bias, [sequences, 1, 1, words + 1]);
}

function embedWords(
  p: ParamMap,
  prefix: string,
  ids: Int32Array,
  sequences: number,
  t: TextConfig,
): tf.Tensor {
  for (const id of ids) {
    if (!(id >= 0 && id < t.vocabSize))
      throw new RangeError(`word id ${id} outside the vocabulary [0, ${t.vocabSize})`);
  }
  const rows = gatherRows(p[`${prefix}/embedding`], tf.tensor1d(ids, "int32"));
  return rows.reshape([sequences, t.maxWords, t.embedDim]);
}

export function buildTextBackbone(b: ParamBuilder, c: ModelConfig): void {
  const { embedDim, vocabSize, relativeBuckets } = c.textConfig;
  const s = c.text;
  const d = s.hidden;
  b.add("text/embedding", [vocabSize, embedDim], { kind: "truncatedNormal", std: embedDim ** -0.5 });
  b.add("text/agg", [embedDim], { kind: "glorotNormal" });
  buildDense(b, "text/pre_proj", embedDim, d, false);
  for (let i = 0; i < s.layers; i++) {
    const l = `text/layer_${i}`;
    b.add(`${l}/attn_norm/scale`, [d], ONES);
    for (const q of ["q", "k", "v", "o"]) buildDense(b, `${l}/attn/${q}`, d, d, false);
    if (i === 0)
      b.add(`${l}/attn/relative_bias`, [relativeBuckets, s.heads], { kind: "uniform", limit: 0.05 });
    buildLayerNorm(b, `${l}/ffn_ln`, d);
    b.add(`${l}/ffn/wi/kernel`, [d, s.mlp], GLOROT);
    b.add(`${l}/ffn/wo/kernel`, [s.mlp, d], GLOROT);
  }
  b.add("text/final_norm/scale", [d], ONES);
}

/** Relative position bias [1, H, N, N] from layer 0's table. */
function relativeBias(p: ParamMap, c: ModelConfig, length: number): tf.Tensor {
  const { relativeBuckets, relativeMaxDistance } = c.textConfig;
  const table = tf.tensor1d(relativeBucketTable(length, relativeBuckets, relativeMaxDistance), "int32");
  const rows = gatherRows(p["text/layer_0/attn/relative_bias"], table); // [N * N, H]
  return rows.reshape([length, length, c.text.heads]).transpose([2, 0, 1]).expandDims(0);
}

/** ids: sequences x maxWords word ids -> pooled [sequences, d]. */
export function textBackbone(
  p: ParamMap,
  c: ModelConfig,
  ids: Int32Array,
  sequences: number,
  ctx: ForwardContext,
): tf.Tensor2D {
  const t = c.textConfig;
  const s = c.text;
  const eps = c.layerNormEps;
  const words = embedWords(p, "text", ids, sequences, t);
  let x = gelu(dense(prependToken(words, p["text/agg"]), p["text/pre_proj/kernel"]));
  const bias = tf.add(relativeBias(p, c, t.maxWords + 1), paddingMaskBias(ids, sequences, t.maxWords));
  x = dropout(x, ctx);
  for (let i = 0; i < s.layers; i++) {
    const l = `text/layer_${i}`;
    const weights = {
      norm1: p[`${l}/attn_norm/scale`],
      ...Object.fromEntries(["q", "k", "v", "o"].map((w) => [`w${w}`, p[`${l}/attn/${w}/kernel`]])),
      norm2: p[`${l}/ffn_ln/gamma`],
      norm2Beta: p[`${l}/ffn_ln/beta`],
      w1: p[`${l}/ffn/wi/kernel`],
      w2: p[`${l}/ffn/wo/kernel`],
    };
    const kind = { norm: "rms", biases: false, heads: s.heads, scale: 1, eps } as const;
    const fused = fusedBlock(x, weights, kind, s.mlp, ctx, bias);
    if (fused) {
      x = fused;
      continue;
    }
    const h = rmsNorm(x, p[`${l}/attn_norm/scale`], eps);
    const q = dense(h, p[`${l}/attn/q/kernel`]);
    const k = dense(h, p[`${l}/attn/k/kernel`]);
    const v = dense(h, p[`${l}/attn/v/kernel`]);
    const attended = dense(multiHeadAttention(q, k, v, s.heads, 1, bias, ctx), p[`${l}/attn/o/kernel`]);
    x = tf.add(x, dropout(attended, ctx));
    const h2 = layerNorm(x, p[`${l}/ffn_ln/gamma`], p[`${l}/ffn_ln/beta`], eps);
    const ffn = dense(dropout(gelu(dense(h2, p[`${l}/ffn/wi/kernel`])), ctx), p[`${l}/ffn/wo/kernel`]);
    x = tf.add(x, dropout(ffn, ctx));
  }
  x = dropout(rmsNorm(x, p["text/final_norm/scale"], eps), ctx);
  return firstToken(x);
}

/** VATT-MA: embedding -> Dense(d, no bias, GELU) -> + LN(temporal table) -> dropout -> aggregation token. */
export function buildSharedTextTokenizer(b: ParamBuilder, c: ModelConfig, d: number): void {
  const { embedDim, vocabSize, maxWords } = c.textConfig;
  b.add("text/embedding", [vocabSize, embedDim], { kind: "truncatedNormal", std: embedDim ** -0.5 });
  buildDense(b, "text/pre_proj", embedDim, d, false);
  b.add("text/pos/temporal", [maxWords, d], { kind: "truncatedNormal", std: d ** -0.5 });
  buildLayerNorm(b, "text/pos/ln", d);
  b.add("text/agg", [d], { kind: "glorotNormal" });
}

/** VATT-MA text tokens [sequences, 1 + W, d] and the padding mask bias for the shared backbone. */
export function sharedTextTokens(
  p: ParamMap,
  c: ModelConfig,
  ids: Int32Array,
  sequences: number,
  ctx: ForwardContext,
): { tokens: tf.Tensor; maskBias: tf.Tensor } {
  const t = c.textConfig;
  const words = embedWords(p, "text", ids, sequences, t);
  const projected = gelu(dense(words, p["text/pre_proj/kernel"]));
  const pos = layerNorm(
    p["text/pos/temporal"],
    p["text/pos/ln/gamma"],
    p["text/pos/ln/beta"],
    c.layerNormEps,
  );
  const tokens = prependToken(dropout(tf.add(projected, pos), ctx), p["text/agg"]);
  return { tokens, maskBias: paddingMaskBias(ids, sequences, t.maxWords) };
}
