/**
 * Fine-tuning losses in the reference's form (vatt/data/processing.py, vatt/modeling/backbones/*\/factory.py).
 *
 * Video (single-label): softmax cross-entropy against smoothed targets, (1 - alpha) y + alpha / C with alpha = 0.1,
 * mean over the batch. The reference smooths the one-hot labels in the input pipeline, before mixup (when used).
 *
 * Audio (multi-label, AudioSet): sigmoid cross-entropy per class, each SAMPLE's loss weighted by the inverse
 * per-batch frequency of its labels, exactly as `inverse_label_occurance` does:
 *
 *   n_c = sum_j y_jc                     (how many samples of the batch carry class c)
 *   k_i = sum_c y_ic                     (how many labels sample i carries)
 *   w_i = (1 / k_i) sum_c y_ic / n_c     (the mean, over sample i's labels, of 1 / their batch count)
 *   loss = mean_i ( w_i * sum_c BCE(y_ic, logit_ic) )
 *
 * So a sample whose labels are rare in the batch weighs more; every class of the sample shares the one weight (it
 * is not a per-class weight), and the class sum is not divided by C. Soft targets (mixup) enter the same formulas.
 * A sample without any label gets weight 0 (the reference divides 0 by 0 there and its NaN guard then zeroes the
 * whole batch's loss; AudioSet clips always carry a label).
 *
 * The multi-label head's bias starts at -log(C - 1): sigmoid(bias) = 1 / C, the prior of one positive in C classes.
 */
import * as tf from "@tensorflow/tfjs";

export const LABEL_SMOOTHING = 0.1;

/** (1 - alpha) y + alpha / C over the last axis (the reference's label_smoothing, single-label). */
export function smoothLabels(targets: tf.Tensor, alpha = LABEL_SMOOTHING): tf.Tensor {
  if (!(alpha >= 0 && alpha <= 1))
    throw new RangeError(`smoothLabels: alpha must be in [0, 1], got ${alpha}`);
  const classes = targets.shape[targets.rank - 1] ?? 1;
  return tf.tidy(() => tf.add(tf.mul(targets, 1 - alpha), alpha / classes));
}

/**
 * Softmax cross-entropy, mean over the batch: logits [B, C], targets [B, C] (one-hot, smoothed or mixed).
 * With `smoothing` > 0 the targets are smoothed first (pass 0 when the pipeline already did, as the reference's).
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D, smoothing = 0): tf.Scalar {
  if (logits.shape[0] !== targets.shape[0] || logits.shape[1] !== targets.shape[1])
    throw new RangeError(`softmaxCrossEntropy: logits ${logits.shape} and targets ${targets.shape} differ`);
  return tf.tidy(() => {
    const y = smoothing > 0 ? smoothLabels(targets, smoothing) : targets;
    const logP = tf.logSoftmax(logits, -1);
    return tf.mean(tf.neg(tf.sum(tf.mul(y, logP), -1))) as tf.Scalar;
  });
}

/** Per-sample weights [B] = mean over the sample's labels of 1 / (batch count of that label); 0 without labels. */
export function inverseLabelFrequencyWeights(targets: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const labelsPerSample = tf.sum(targets, 1, true); // [B, 1]
    const classCount = tf.sum(targets, 0, true); // [1, C]
    const inverse = tf.divNoNan(tf.onesLike(classCount), classCount);
    const perClass = tf.divNoNan(tf.mul(inverse, targets), labelsPerSample); // [B, C]
    return tf.sum(perClass, 1) as tf.Tensor1D;
  });
}

/** Elementwise sigmoid cross-entropy with logits, in the stable form max(x, 0) - x y + log(1 + exp(-|x|)). */
export function sigmoidCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))),
  );
}

/**
 * Multi-label loss of audio fine-tuning: logits and targets [B, C]; each sample's summed sigmoid cross-entropy
 * weighted by `inverseLabelFrequencyWeights` (set `reweight: false` for the plain sum over classes), mean over B.
 */
export function multiLabelLoss(logits: tf.Tensor2D, targets: tf.Tensor2D, reweight = true): tf.Scalar {
  if (logits.shape[0] !== targets.shape[0] || logits.shape[1] !== targets.shape[1])
    throw new RangeError(`multiLabelLoss: logits ${logits.shape} and targets ${targets.shape} differ`);
  return tf.tidy(() => {
    const perSample = tf.sum(sigmoidCrossEntropy(logits, targets), 1); // [B]
    const weighted = reweight ? tf.mul(perSample, inverseLabelFrequencyWeights(targets)) : perSample;
    return tf.mean(weighted) as tf.Scalar;
  });
}

/** Initial bias of the multi-label classifier: -log(C - 1), so each class starts at probability 1 / C. */
export function multiLabelBiasInit(classes: number): number {
  if (!(Number.isInteger(classes) && classes >= 2))
    throw new RangeError(`multiLabelBiasInit: needs at least 2 classes, got ${classes}`);
  return -Math.log(classes - 1);
}

/** One-hot targets [B, C] from class indices. */
export function oneHotTargets(labels: ArrayLike<number>, classes: number): tf.Tensor2D {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < classes))
      throw new RangeError(
        `oneHotTargets: label ${y} of sample ${i} is not a class index in [0, ${classes})`,
      );
  }
  return tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from(labels), "int32"), classes).toFloat() as tf.Tensor2D);
}

/**
 * Gradients split for fine-tuning's clipping: the reference clips the BACKBONE's gradients to global norm 0.75 and
 * leaves the classifier's alone (gradient_clip_norm 0.75, gradient_clip_norm_cls 0). model/optim.ts's clipNorm
 * clips all gradients together, so for the reference behaviour clip here and give the optimiser no clipNorm.
 * NaN gradients are zeroed first (as applyGradients does). Returns new tensors (the caller disposes both maps).
 */
export function clipBackboneGradients(
  grads: Record<string, tf.Tensor>,
  isClassifier: (name: string) => boolean,
  clipNorm = 0.75,
): { grads: Record<string, tf.Tensor>; backboneNorm: number } {
  const names = Object.keys(grads);
  const clean: Record<string, tf.Tensor> = {};
  for (const name of names) {
    const g = grads[name];
    clean[name] = tf.tidy(() => tf.where(tf.isNaN(g), tf.zerosLike(g), g));
  }
  const backbone = names.filter((n) => !isClassifier(n));
  const normTensor = tf.tidy(() => {
    const squares = backbone.map((n) => tf.sum(tf.square(clean[n])));
    return tf.sqrt(squares.length > 0 ? tf.addN(squares) : tf.scalar(0));
  });
  const backboneNorm = normTensor.dataSync()[0];
  normTensor.dispose();
  const factor = backboneNorm > clipNorm ? clipNorm / backboneNorm : 1;
  if (factor !== 1) {
    for (const n of backbone) {
      const scaled = tf.mul(clean[n], factor);
      clean[n].dispose();
      clean[n] = scaled;
    }
  }
  return { grads: clean, backboneNorm };
}
