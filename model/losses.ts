/**
 * Contrastive losses in the reference's form. For video i with K candidate positives (K = 1 for audio):
 *
 *   loss_i = logsumexp over { s(v_i, t_{j,l}) } and { s(v_j, t_{i,l}) } for all j, l   (one symmetric denominator,
 *            positives included)  -  logsumexp_l s(v_i, t_{i,l}),          s = cosine similarity / tau
 *
 * Masking (AudioSet has no text; a clip may lack audio): a similarity involving an invalid caption gets -1e9, and
 * the per-sample loss is multiplied by mask * (B / valid count), so the mean is over valid samples. The mask is
 * given per caption [B, K]; a sample is valid when any of its captions is. With a mask that is constant over K
 * this is exactly the reference.
 *
 * On the fast path each loss is one kernel each way (model/fast/js-kernels.ts): composed, the two losses of a step are
 * ~120 kernels forward and ~200 backward on [B, D] tensors, nearly all engine bookkeeping.
 */
import * as tf from "@tensorflow/tfjs";
import { fusedContrastiveLoss, fusedOpsReady } from "./fast/index.js";

export const TEMPERATURE = 0.07;
const LARGE = 1e9;

export function l2Normalize(x: tf.Tensor, axis = -1): tf.Tensor {
  const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(x), axis, true), 1e-12));
  return tf.div(x, norm);
}

/**
 * MIL-NCE: video [B, D], text [B * K, D] (each video's K captions contiguous), mask [B, K] (1 valid, 0 not).
 * Returns the scalar mean loss.
 */
export function milNceLoss(
  video: tf.Tensor,
  text: tf.Tensor,
  mask: tf.Tensor,
  temperature = TEMPERATURE,
): tf.Scalar {
  return tf.tidy(() => {
    const b = video.shape[0];
    const k = text.shape[0] / b;
    if (!Number.isInteger(k) || mask.shape[0] !== b || mask.shape[1] !== k) {
      throw new RangeError(`MIL-NCE shapes: video ${video.shape}, text ${text.shape}, mask ${mask.shape}`);
    }
    const fits = video.rank === 2 && text.rank === 2 && text.shape[1] === video.shape[1];
    if (fits && video.dtype === "float32" && text.dtype === "float32" && fusedOpsReady()) {
      return fusedContrastiveLoss(video, text, tf.cast(mask, "float32"), temperature);
    }
    const v = l2Normalize(video);
    const t = l2Normalize(text);
    // sim[i, j, l] = s(v_i, t_{j,l}) / tau
    const sim = tf.div(tf.matMul(v, t, false, true), temperature).reshape([b, b, k]);
    const invalid = tf.mul(tf.sub(1, mask), LARGE); // [B, K]
    // Row i of the denominator: v_i against every caption, and every video against v_i's captions.
    const videoToAll = tf.sub(sim, invalid.expandDims(0)); // [i, j, l]: caption (j, l)
    const allToVideo = tf.sub(sim.transpose([1, 0, 2]), invalid.expandDims(1)); // [i, j, l] = s(v_j, t_{i,l})
    const denominator = tf.logSumExp(tf.concat([videoToAll, allToVideo], 1).reshape([b, -1]), 1);
    const diagonal = tf.sum(tf.mul(sim, tf.eye(b).expandDims(2)), 1); // [B, K] = s(v_i, t_{i,l})
    const numerator = tf.logSumExp(tf.sub(diagonal, invalid), 1);
    const perSample = tf.sub(denominator, numerator);
    const valid = tf.max(mask, 1); // [B]
    const validCount = tf.sum(valid);
    const scale = tf.where(tf.greater(validCount, 0), tf.div(b, tf.maximum(validCount, 1)), tf.scalar(0));
    // where(), not a product alone: an all-masked row holds ~1e9 and must contribute exactly 0.
    const weighted = tf.where(
      tf.greater(valid, 0),
      tf.mul(perSample, tf.mul(valid, scale)),
      tf.zerosLike(perSample),
    );
    return tf.mean(weighted) as tf.Scalar;
  });
}

/** NCE between video and audio [B, D] with a per-sample mask [B] (audio present). */
export function nceLoss(
  video: tf.Tensor,
  audio: tf.Tensor,
  mask: tf.Tensor,
  temperature = TEMPERATURE,
): tf.Scalar {
  return tf.tidy(() => milNceLoss(video, audio, mask.reshape([video.shape[0], 1]), temperature));
}
