/**
 * The whole VATT network as named parameter maps and pure forward functions (no tf.layers): video, audio and text
 * backbones (or one shared backbone for VATT-MA), and the heads to the common spaces.
 */
import type * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../core/random.js";
import { type ModelConfig, validateConfig, voxelSize } from "./config.js";
import { audioHead, buildHeads, textHead, videoHeads } from "./heads.js";
import type { ForwardContext } from "./ops.js";
import { firstToken } from "./ops.js";
import { countParams, disposeParams, ParamBuilder, type ParamMap } from "./params.js";
import { buildSharedTextTokenizer, buildTextBackbone, sharedTextTokens, textBackbone } from "./text.js";
import {
  AUDIO_TABLES,
  audioTableSizes,
  buildTokenizer,
  type Patches,
  tokenize,
  VIDEO_TABLES,
  videoTableSizes,
} from "./tokens.js";
import { buildEncoder, encoder } from "./transformer.js";

export interface VattModel {
  config: ModelConfig;
  /** Trainable weights by stable name. */
  params: ParamMap;
  /** Non-trainable state saved with the model (BatchNorm moving statistics). */
  state: ParamMap;
}

/** Builds a freshly initialised model; the seed fixes every weight. */
export function createModel(config: ModelConfig, seed = 0): VattModel {
  validateConfig(config);
  const b = new ParamBuilder(randomForRun(seed, "model/init"));
  const c = config;
  if (c.shared) {
    const d = c.video.hidden;
    buildTokenizer(b, "video", voxelSize(c.videoGeometry), VIDEO_TABLES, videoTableSizes(c.videoGeometry), d);
    buildTokenizer(b, "audio", c.audioGeometry.patch, AUDIO_TABLES, audioTableSizes(c.audioGeometry), d);
    buildSharedTextTokenizer(b, c, d);
    buildEncoder(b, "shared", c.video);
  } else {
    const dv = c.video.hidden;
    const da = c.audio.hidden;
    buildTokenizer(
      b,
      "video",
      voxelSize(c.videoGeometry),
      VIDEO_TABLES,
      videoTableSizes(c.videoGeometry),
      dv,
    );
    buildEncoder(b, "video", c.video);
    buildTokenizer(b, "audio", c.audioGeometry.patch, AUDIO_TABLES, audioTableSizes(c.audioGeometry), da);
    buildEncoder(b, "audio", c.audio);
    buildTextBackbone(b, c);
  }
  buildHeads(b, c);
  return { config, params: b.params, state: b.state };
}

export function disposeModel(m: VattModel): void {
  disposeParams(m.params);
  disposeParams(m.state);
}

/** Trainable parameters under a name prefix ("video/", "heads/", "" for all). */
export function modelParamCount(m: VattModel, prefix = ""): number {
  return countParams(m.params, prefix);
}

/** Pooled video feature [B, dv]: the aggregation token after the final LayerNorm. */
export function videoBackbone(m: VattModel, patches: Patches, ctx: ForwardContext): tf.Tensor2D {
  const c = m.config;
  const tokens = tokenize(m.params, "video", VIDEO_TABLES, patches, c.layerNormEps, ctx);
  const prefix = c.shared ? "shared" : "video";
  return firstToken(encoder(m.params, prefix, c.video, tokens, c.layerNormEps, ctx));
}

export function audioBackbone(m: VattModel, patches: Patches, ctx: ForwardContext): tf.Tensor2D {
  const c = m.config;
  const tokens = tokenize(m.params, "audio", AUDIO_TABLES, patches, c.layerNormEps, ctx);
  const [prefix, size] = c.shared ? ["shared", c.video] : ["audio", c.audio];
  return firstToken(encoder(m.params, prefix, size, tokens, c.layerNormEps, ctx));
}

/** ids: sequences x maxWords -> pooled [sequences, dt]. */
export function textBackboneOf(
  m: VattModel,
  ids: Int32Array,
  sequences: number,
  ctx: ForwardContext,
): tf.Tensor2D {
  const c = m.config;
  if (!c.shared) return textBackbone(m.params, c, ids, sequences, ctx);
  const { tokens, maskBias } = sharedTextTokens(m.params, c, ids, sequences, ctx);
  return firstToken(encoder(m.params, "shared", c.video, tokens, c.layerNormEps, ctx, maskBias));
}

/** Common-space embeddings (not normalised). */
export interface Embeddings {
  videoVa: tf.Tensor2D;
  videoVt: tf.Tensor2D;
  audioVa: tf.Tensor2D;
  textVt: tf.Tensor2D;
}

export interface ForwardInputs {
  video: Patches;
  audio: Patches;
  /** sequences x maxWords word ids, sequences = B * K. */
  textIds: Int32Array;
  textSequences: number;
}

export function forward(m: VattModel, inputs: ForwardInputs, ctx: ForwardContext): Embeddings {
  const v = videoHeads(m.params, m.state, m.config, videoBackbone(m, inputs.video, ctx), ctx);
  const audioVa = audioHead(m.params, audioBackbone(m, inputs.audio, ctx));
  const textVt = textHead(m.params, textBackboneOf(m, inputs.textIds, inputs.textSequences, ctx));
  return { videoVa: v.va, videoVt: v.vt, audioVa, textVt };
}
