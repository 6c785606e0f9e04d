/**
 * Video and audio tokens: non-overlapping voxels (pt x ph x pw x 3) or windows of raw samples, projected to d with
 * a bias; per-axis learned positional tables summed, LayerNorm'ed and added; dropout; DropToken; the aggregation
 * token prepended last (no position, always kept).
 *
 * Cutting the clip into patches and DropToken's choice of tokens are done on the plain input arrays in JavaScript:
 * the input needs no gradient, projecting only the kept patches is the same arithmetic as projecting all and
 * dropping after (the projection is per token), and it avoids a strided 3D convolution, whose gradient the wasm
 * backend lacks. Positions travel with their tokens through index lists into the positional tables.
 */
import * as tf from "@tensorflow/tfjs";
import type { Random } from "../core/random.js";
import { videoPatchesNative } from "../native/kernels.js";
import {
  type AudioGeometry,
  audioTokens,
  keptTokens,
  type VideoGeometry,
  videoGrid,
  videoTokens,
  voxelSize,
} from "./config.js";
import { tensorWrittenInPlace } from "./fast/index.js";
import { dense, dropout, type ForwardContext, gatherRows, layerNorm, prependToken } from "./ops.js";
import type { ParamBuilder, ParamMap } from "./params.js";
import { buildDense, buildLayerNorm } from "./transformer.js";

/**
 * Patches of one modality for a batch, with each token's index on every axis. The values are written on demand
 * (`write`): on the fast path straight into the input tensor's memory, so a step allocates no 3 MB array of
 * its own (fresh arrays of that size a step kept V8 collecting for "external memory pressure", ~1 ms a tiny step).
 */
export interface Patches {
  batch: number;
  tokens: number;
  patchSize: number;
  /** One Int32Array of n indices per positional table (video: temporal, vertical, horizontal). */
  positions: Int32Array[];
  /** Writes the B x n x patchSize values into `out` (at least that long). */
  write(out: Float32Array): void;
}

/** The patch values as a new array (B x n x patchSize). */
export function patchData(p: Patches): Float32Array {
  const out = new Float32Array(p.batch * p.tokens * p.patchSize);
  p.write(out);
  return out;
}

/**
 * DropToken's choice: int((1 - rate) * n) distinct token indices drawn without replacement, one draw for the whole
 * batch (as the reference). Returned ascending; rate 0 or no generator keeps every token.
 */
export function dropTokenIndices(n: number, rate: number, rng?: Random): Int32Array {
  const all = Int32Array.from({ length: n }, (_, i) => i);
  if (!rng || rate <= 0) return all;
  const keep = keptTokens(n, rate);
  // Partial Fisher-Yates: the first `keep` entries become a uniform sample without replacement.
  for (let i = 0; i < keep; i++) {
    const j = i + rng.int(n - i);
    const t = all[i];
    all[i] = all[j];
    all[j] = t;
  }
  return all.slice(0, keep).sort();
}

/**
 * Cuts B x T x H x W x 3 video into voxels, keeping the tokens listed in `keep` (token order t, h, w; values in
 * each voxel ordered dt, dh, dw, channel, the layout of a Conv3D kernel flattened).
 */
export function videoPatches(
  video: Float32Array,
  batch: number,
  g: VideoGeometry,
  keep: Int32Array,
): Patches {
  const [, nh, nw] = videoGrid(g);
  const { frames: T, height: H, width: W, patchFrames: pt, patchHeight: ph, patchWidth: pw } = g;
  const size = voxelSize(g);
  const n = keep.length;
  if (video.length !== batch * T * H * W * 3) {
    throw new RangeError(`video has ${video.length} values, expected ${batch}x${T}x${H}x${W}x3`);
  }
  const tIdx = new Int32Array(n);
  const hIdx = new Int32Array(n);
  const wIdx = new Int32Array(n);
  const row = pw * 3;
  for (let k = 0; k < n; k++) {
    const token = keep[k];
    tIdx[k] = Math.floor(token / (nh * nw));
    hIdx[k] = Math.floor(token / nw) % nh;
    wIdx[k] = token % nw;
  }
  const write = (data: Float32Array): void => {
    const dims = [batch, T, H, W, pt, ph, pw] as [number, number, number, number, number, number, number];
    if (videoPatchesNative(video, data.subarray(0, batch * n * size), dims, [tIdx, hIdx, wIdx])) return;
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < n; k++) {
        let out = (b * n + k) * size;
        for (let dt = 0; dt < pt; dt++) {
          const frame = b * T + tIdx[k] * pt + dt;
          for (let dh = 0; dh < ph; dh++) {
            const start = ((frame * H + hIdx[k] * ph + dh) * W + wIdx[k] * pw) * 3;
            data.set(video.subarray(start, start + row), out);
            out += row;
          }
        }
      }
    }
  };
  return { batch, tokens: n, patchSize: size, positions: [tIdx, hIdx, wIdx], write };
}

/** Cuts B x S waveforms into windows of `patch` samples, keeping the windows listed in `keep`. */
export function audioPatches(
  audio: Float32Array,
  batch: number,
  g: AudioGeometry,
  keep: Int32Array,
): Patches {
  const n = keep.length;
  if (audio.length !== batch * g.samples) {
    throw new RangeError(`audio has ${audio.length} values, expected ${batch}x${g.samples}`);
  }
  const write = (data: Float32Array): void => {
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < n; k++) {
        const start = b * g.samples + keep[k] * g.patch;
        data.set(audio.subarray(start, start + g.patch), (b * n + k) * g.patch);
      }
    }
  };
  return { batch, tokens: n, patchSize: g.patch, positions: [keep.slice()], write };
}

/** Names of the positional tables of a modality, in the order of Patches.positions. */
export const VIDEO_TABLES = ["temporal", "vertical", "horizontal"] as const;
export const AUDIO_TABLES = ["temporal"] as const;

export function videoTableSizes(g: VideoGeometry): number[] {
  return videoGrid(g);
}

export function audioTableSizes(g: AudioGeometry): number[] {
  return [audioTokens(g)];
}

/** Projection, positional tables (+ their LayerNorm) and aggregation token of one modality. */
export function buildTokenizer(
  b: ParamBuilder,
  prefix: string,
  patchSize: number,
  tables: readonly string[],
  tableSizes: number[],
  d: number,
): void {
  buildDense(b, `${prefix}/patch`, patchSize, d, true);
  tables.forEach((t, i) => {
    b.add(`${prefix}/pos/${t}`, [tableSizes[i], d], { kind: "truncatedNormal", std: d ** -0.5 });
  });
  buildLayerNorm(b, `${prefix}/pos/ln`, d);
  b.add(`${prefix}/agg`, [d], { kind: "glorotNormal" });
}

/** LN(sum of the per-axis table rows) for the given token positions: [n, d]. */
export function positionalEmbedding(
  p: ParamMap,
  prefix: string,
  tables: readonly string[],
  positions: Int32Array[],
  eps: number,
): tf.Tensor {
  let sum: tf.Tensor | undefined;
  tables.forEach((t, i) => {
    const rows = gatherRows(p[`${prefix}/pos/${t}`], tf.tensor1d(positions[i], "int32"));
    sum = sum ? tf.add(sum, rows) : rows;
  });
  if (!sum) throw new Error(`${prefix}: no positional tables`);
  return layerNorm(sum, p[`${prefix}/pos/ln/gamma`], p[`${prefix}/pos/ln/beta`], eps);
}

/** Patches -> [B, 1 + n, d] Transformer input (aggregation token first). */
export function tokenize(
  p: ParamMap,
  prefix: string,
  tables: readonly string[],
  patches: Patches,
  eps: number,
  ctx: ForwardContext,
): tf.Tensor {
  const shape = [patches.batch, patches.tokens, patches.patchSize];
  const x = tensorWrittenInPlace(shape, patches.write) ?? tf.tensor(patchData(patches), shape);
  const projected = dense(x, p[`${prefix}/patch/kernel`], p[`${prefix}/patch/bias`]);
  const pos = positionalEmbedding(p, prefix, tables, patches.positions, eps);
  const embedded = dropout(tf.add(projected, pos), ctx);
  return prependToken(embedded, p[`${prefix}/agg`]);
}

/** Every token index of a modality (inference). */
export function allVideoTokens(g: VideoGeometry): Int32Array {
  return dropTokenIndices(videoTokens(g), 0);
}

export function allAudioTokens(g: AudioGeometry): Int32Array {
  return dropTokenIndices(audioTokens(g), 0);
}
