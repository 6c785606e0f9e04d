/**
 * Named parameter maps. Every weight is a plain `tf.Variable` stored under a stable, path-like name
 * ("video/layer_0/attn/q/kernel") so checkpoints, optimiser slots and gradients all use the same keys.
 * Initial values are drawn in JavaScript from the project's seeded generator, so a seed fixes the weights exactly.
 */
import * as tf from "@tensorflow/tfjs";
import type { Random } from "../core/random.js";

export type ParamMap = Record<string, tf.Variable>;

/** How to fill a new parameter. */
export type Init =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "glorotUniform" }
  | { kind: "glorotNormal" }
  | { kind: "truncatedNormal"; std: number }
  | { kind: "uniform"; limit: number };

export const ZEROS: Init = { kind: "zeros" };
export const ONES: Init = { kind: "ones" };
export const GLOROT: Init = { kind: "glorotUniform" };

/** Fan-in and fan-out as Keras computes them for a dense kernel [in, out] or a vector. */
function fans(shape: number[]): [number, number] {
  if (shape.length === 1) return [shape[0], shape[0]];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

/** Normal draw truncated at two standard deviations (redrawn), as tf.keras TruncatedNormal. */
function truncatedNormal(rng: Random): number {
  for (;;) {
    const z = rng.normal();
    if (Math.abs(z) <= 2) return z;
  }
}

export function initialValues(shape: number[], init: Init, rng: Random): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const [fanIn, fanOut] = fans(shape);
  switch (init.kind) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "glorotUniform": {
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) out[i] = rng.uniform(-limit, limit);
      break;
    }
    case "glorotNormal": {
      // Keras' glorot_normal is a truncated normal whose std is corrected for the truncation at 2 sigma.
      const std = Math.sqrt(2 / (fanIn + fanOut)) / 0.8796256610342398;
      for (let i = 0; i < size; i++) out[i] = std * truncatedNormal(rng);
      break;
    }
    case "truncatedNormal":
      for (let i = 0; i < size; i++) out[i] = init.std * truncatedNormal(rng);
      break;
    case "uniform":
      for (let i = 0; i < size; i++) out[i] = rng.uniform(-init.limit, init.limit);
      break;
  }
  return out;
}

/**
 * Collects parameters while a network is built. tfjs variable names must be globally unique, so the tfjs name is
 * left automatic and our stable name is the map key.
 */
export class ParamBuilder {
  readonly params: ParamMap = {};
  readonly state: ParamMap = {};

  constructor(private readonly rng: Random) {}

  /** A trainable parameter; its random stream depends on its name only, not on creation order. */
  add(name: string, shape: number[], init: Init): tf.Variable {
    if (name in this.params) throw new Error(`duplicate parameter ${name}`);
    const values = initialValues(shape, init, this.rng.fork(name));
    const initial = tf.tensor(values, shape);
    const v = tf.variable(initial, true);
    initial.dispose();
    this.params[name] = v;
    return v;
  }

  /** A non-trainable value saved with the model (BatchNorm moving statistics). */
  addState(name: string, shape: number[], init: Init): tf.Variable {
    if (name in this.state) throw new Error(`duplicate state ${name}`);
    const values = initialValues(shape, init, this.rng.fork(name));
    const initial = tf.tensor(values, shape);
    const v = tf.variable(initial, false);
    initial.dispose();
    this.state[name] = v;
    return v;
  }
}

export function countParams(params: ParamMap, prefix = ""): number {
  let n = 0;
  for (const [name, v] of Object.entries(params)) if (name.startsWith(prefix)) n += v.size;
  return n;
}

export function disposeParams(params: ParamMap): void {
  for (const v of Object.values(params)) v.dispose();
}
