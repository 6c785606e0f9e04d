/**
 * The video/audio Transformer (also VATT-MA's shared backbone): pre-LN blocks with biases on q/k/v/o and the MLP,
 * scores / sqrt(head dim), GELU, dropout on the attention probabilities, the attention residual, after the MLP
 * activation and on the MLP residual; a final LayerNorm.
 *
 * Parameters of block i live under `${prefix}/layer_${i}/...`, the final norm under `${prefix}/final_ln/...`.
 */
import * as tf from "@tensorflow/tfjs";
import type { TransformerSize } from "./config.js";
import { type EncoderBlockOptions, fusedAttention, fusedEncoderBlock, fusedOpsReady } from "./fast/index.js";
import { dense, dropout, dropoutWords, type ForwardContext, gelu, layerNorm } from "./ops.js";
import { GLOROT, ONES, type ParamBuilder, type ParamMap, ZEROS } from "./params.js";

export function buildLayerNorm(b: ParamBuilder, prefix: string, d: number): void {
  b.add(`${prefix}/gamma`, [d], ONES);
  b.add(`${prefix}/beta`, [d], ZEROS);
}

export function buildDense(b: ParamBuilder, prefix: string, din: number, dout: number, bias: boolean): void {
  b.add(`${prefix}/kernel`, [din, dout], GLOROT);
  if (bias) b.add(`${prefix}/bias`, [dout], ZEROS);
}

export function buildEncoder(b: ParamBuilder, prefix: string, s: TransformerSize): void {
  const d = s.hidden;
  for (let i = 0; i < s.layers; i++) {
    const l = `${prefix}/layer_${i}`;
    buildLayerNorm(b, `${l}/ln1`, d);
    for (const p of ["q", "k", "v", "o"]) buildDense(b, `${l}/attn/${p}`, d, d, true);
    buildLayerNorm(b, `${l}/ln2`, d);
    buildDense(b, `${l}/mlp/fc1`, d, s.mlp, true);
    buildDense(b, `${l}/mlp/fc2`, s.mlp, d, true);
  }
  buildLayerNorm(b, `${prefix}/final_ln`, d);
}

/** [B, N, H * dh] -> [B, H, N, dh] */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor {
  const [b, n, d] = x.shape as number[];
  return x.reshape([b, n, heads, d / heads]).transpose([0, 2, 1, 3]);
}

/** [B, H, N, dh] -> [B, N, H * dh] */
export function joinHeads(x: tf.Tensor): tf.Tensor {
  const [b, h, n, dh] = x.shape as number[];
  return x.transpose([0, 2, 1, 3]).reshape([b, n, h * dh]);
}

/**
 * softmax(q k^T * scale + bias) v with dropout on the probabilities; q/k/v are [B, H, N, dh].
 * `bias` broadcasts to [B, H, N, N] (padding mask, relative positions).
 */
export function attend(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  scale: number,
  bias: tf.Tensor | undefined,
  ctx: ForwardContext,
): tf.Tensor {
  let scores = tf.matMul(q, k, false, true);
  if (scale !== 1) scores = tf.mul(scores, scale);
  if (bias) scores = tf.add(scores, bias);
  const probs = dropout(tf.softmax(scores, -1), ctx);
  return tf.matMul(probs, v);
}

/**
 * Multi-head attention on projections in their own layout: q, k, v [B, N, H * dh] -> [B, N, H * dh], i.e.
 * joinHeads(attend(splitHeads(q), splitHeads(k), splitHeads(v), ...)). One native kernel each way on the fast path
 * (model/fast/index.ts `fusedAttention`: same dropout draws, no head transposes; a bias broadcasting to [B, H, N, N]
 * is spread to it), faster than the composed ops at every size measured (fwd + bwd: 8 x 65 tokens, 4 x 16 heads,
 * 1.5 vs 3.2 ms; 1 x 1568 tokens, 12 x 64 heads, 298 vs 395 ms); the composed ops otherwise.
 */
export function multiHeadAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  scale: number,
  bias: tf.Tensor | undefined,
  ctx: ForwardContext,
): tf.Tensor {
  const [b, n, d] = q.shape;
  const fused = d % heads === 0 && (!bias || bias.rank === 4);
  if (fused && fusedOpsReady() && q.rank === 3 && q.dtype === "float32") {
    const full = [b, heads, n, n];
    // A bias that broadcasts (a padding mask [B, 1, 1, N]) is spread to [B, H, N, N] first; its gradient sums back.
    const spread = bias && bias.shape.join() !== full.join() ? tf.broadcastTo(bias, full) : bias;
    const rate = ctx.training ? ctx.dropout : 0;
    return fusedAttention(q, k, v, heads, scale, spread, rate, rate > 0 ? dropoutWords(ctx) : [0, 0, 0, 0]);
  }
  return joinHeads(
    attend(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), scale, bias, ctx),
  );
}

function linear(p: ParamMap, name: string, x: tf.Tensor): tf.Tensor {
  return dense(x, p[`${name}/kernel`], p[`${name}/bias`]);
}

/**
 * The block as one fused kernel each way (model/fast/block-kernel.ts) when the fast path is on and the shapes fit, else
 * undefined. Draws the four dropout masks' words in the order the composed block draws them, so both give the
 * same result. `bias` broadcasts to [B, heads, N, N].
 */
export function fusedBlock(
  x: tf.Tensor,
  weights: Record<string, tf.Tensor>,
  kind: Pick<EncoderBlockOptions, "norm" | "biases" | "heads" | "scale" | "eps">,
  mlp: number,
  ctx: ForwardContext,
  bias?: tf.Tensor,
): tf.Tensor | undefined {
  if (x.rank !== 3 || x.dtype !== "float32" || !fusedOpsReady()) return undefined;
  const [b, n, d] = x.shape;
  if (!(b > 0 && n > 0 && d > 0 && mlp > 0 && d % kind.heads === 0) || (bias && bias.rank !== 4))
    return undefined;
  const rate = ctx.training ? ctx.dropout : 0;
  if (!(rate < 1)) throw new RangeError(`dropout rate must be below 1, got ${rate}`);
  const words = rate > 0 ? [0, 1, 2, 3].flatMap(() => dropoutWords(ctx)) : new Array<number>(16).fill(0);
  const full = [b, kind.heads, n, n];
  const spread = bias && bias.shape.join() !== full.join() ? tf.broadcastTo(bias, full) : bias;
  return fusedEncoderBlock(x, weights, { ...kind, rate, words, bias: spread });
}

/** One pre-LN block. `maskBias` ([B, 1, 1, N], 0 or -1e9) hides padding (VATT-MA text). */
export function encoderBlock(
  p: ParamMap,
  l: string,
  s: TransformerSize,
  x: tf.Tensor,
  eps: number,
  ctx: ForwardContext,
  maskBias?: tf.Tensor,
): tf.Tensor {
  const scale = 1 / Math.sqrt(s.hidden / s.heads);
  const weights = {
    norm1: p[`${l}/ln1/gamma`],
    norm1Beta: p[`${l}/ln1/beta`],
    ...Object.fromEntries(
      ["q", "k", "v", "o"].flatMap((w) => [
        [`w${w}`, p[`${l}/attn/${w}/kernel`]],
        [`b${w}`, p[`${l}/attn/${w}/bias`]],
      ]),
    ),
    norm2: p[`${l}/ln2/gamma`],
    norm2Beta: p[`${l}/ln2/beta`],
    w1: p[`${l}/mlp/fc1/kernel`],
    b1: p[`${l}/mlp/fc1/bias`],
    w2: p[`${l}/mlp/fc2/kernel`],
    b2: p[`${l}/mlp/fc2/bias`],
  };
  const kind = { norm: "layer", biases: true, heads: s.heads, scale, eps } as const;
  const fused = fusedBlock(x, weights, kind, s.mlp, ctx, maskBias);
  if (fused) return fused;
  const h = layerNorm(x, p[`${l}/ln1/gamma`], p[`${l}/ln1/beta`], eps);
  const q = linear(p, `${l}/attn/q`, h);
  const k = linear(p, `${l}/attn/k`, h);
  const v = linear(p, `${l}/attn/v`, h);
  const attended = multiHeadAttention(q, k, v, s.heads, scale, maskBias, ctx);
  const x1 = tf.add(x, dropout(linear(p, `${l}/attn/o`, attended), ctx));
  const h2 = layerNorm(x1, p[`${l}/ln2/gamma`], p[`${l}/ln2/beta`], eps);
  const mlp = linear(p, `${l}/mlp/fc2`, dropout(gelu(linear(p, `${l}/mlp/fc1`, h2)), ctx));
  return tf.add(x1, dropout(mlp, ctx));
}

/** All blocks, then the final LayerNorm: [B, N, d] -> [B, N, d]. */
export function encoder(
  p: ParamMap,
  prefix: string,
  s: TransformerSize,
  x: tf.Tensor,
  eps: number,
  ctx: ForwardContext,
  maskBias?: tf.Tensor,
): tf.Tensor {
  let h = x;
  for (let i = 0; i < s.layers; i++) h = encoderBlock(p, `${prefix}/layer_${i}`, s, h, eps, ctx, maskBias);
  return layerNorm(h, p[`${prefix}/final_ln/gamma`], p[`${prefix}/final_ln/beta`], eps);
}
