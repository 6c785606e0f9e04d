/** A tiny model with random values in every weight, for tests that compare two implementations of the forward. */
import * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../../core/random.js";
import type { ModelConfig } from "../../model/config.js";
import { createModel, type VattModel } from "../../model/vatt.js";

/**
 * A model whose every weight matters: fresh init leaves norms at 1/0, biases at 0 and BatchNorm statistics at 0/1,
 * which would hide a swapped gamma/beta or a BatchNorm run on batch statistics. Those get random values here.
 */
export function randomisedModel(config: ModelConfig, seed: number): VattModel {
  const m = createModel(config, seed);
  const rng = randomForRun(seed, "test/export-onnx/weights");
  const perturb = (v: tf.Variable, spread: number, positive: boolean): void => {
    const data = Float32Array.from(v.dataSync() as Float32Array, (x) =>
      positive ? rng.uniform(0.5, 2) : x + rng.uniform(-spread, spread),
    );
    v.assign(tf.tensor(data, v.shape));
  };
  for (const [name, v] of Object.entries(m.params)) {
    if (/\/(gamma|beta|bias|scale)$/.test(name)) perturb(v, 0.3, false);
  }
  for (const [name, v] of Object.entries(m.state)) perturb(v, 0.5, name.endsWith("moving_variance"));
  return m;
}
