/**
 * Optimisers over a named parameter map, with their state in named variables so a checkpoint can save and restore
 * them exactly (tf.train optimisers keep theirs hidden).
 *
 * - Adam(beta1 0.9, beta2 0.999, eps 1e-7), Keras' update: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
 *   p -= lr_t m / (sqrt(v) + eps). Pretraining schedule: linear warmup, then cosine from lr to finalLr.
 * - SGD with momentum (Keras form: u = mu u - lr g; p += u), warmup then half-cosine to 0 (fine-tuning).
 * NaN gradients are zeroed; optional clipping by global norm.
 */
import * as tf from "@tensorflow/tfjs";
import { fusedApplyGradients } from "./fast/optim.js";
import type { ParamMap } from "./params.js";

export interface Schedule {
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  /** Learning rate at totalSteps (0 for the half-cosine of fine-tuning). */
  finalLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * The reference's schedule (vatt/utils/train/schedules.py, warmup_learning_rate 0): linear warmup
 * lr * step / warmupSteps (0 at step 0), then cosine from lr to finalLr over the remaining steps (finalLr 0: the
 * half-cosine lr * (cos(pi * (step - warmup) / (total - warmup)) + 1) / 2); finalLr after totalSteps. `step` counts
 * the updates already applied, as Keras' optimizer.iterations does.
 */
export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  return s.finalLr + 0.5 * (s.lr - s.finalLr) * (1 + Math.cos(Math.PI * progress));
}

export interface AdamOptions {
  kind: "adam";
  beta1: number;
  beta2: number;
  epsilon: number;
}

export interface SgdOptions {
  kind: "sgd";
  momentum: number;
}

export interface OptimizerConfig {
  method: AdamOptions | SgdOptions;
  schedule: Schedule;
  /** Clip gradients to this global norm; undefined = no clipping (pretraining). */
  clipNorm?: number;
}

/** Pretraining defaults of the paper (scale the step counts down for small runs). */
export function pretrainingOptimizer(overrides: Partial<Schedule> = {}): OptimizerConfig {
  return {
    method: { kind: "adam", beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
    schedule: { lr: 1e-4, finalLr: 5e-5, warmupSteps: 10_000, totalSteps: 500_000, ...overrides },
  };
}

/** Video fine-tuning defaults: SGD momentum 0.9, lr 0.005, warmup 2.5k, half-cosine to 0 over 100k, clip 0.75. */
export function finetuningOptimizer(overrides: Partial<Schedule> = {}, clipNorm = 0.75): OptimizerConfig {
  return {
    method: { kind: "sgd", momentum: 0.9 },
    schedule: { lr: 0.005, finalLr: 0, warmupSteps: 2_500, totalSteps: 100_000, ...overrides },
    clipNorm,
  };
}

export interface Optimizer {
  config: OptimizerConfig;
  /** Updates applied so far (the next update uses step + 1 for Adam's bias correction). */
  step: number;
  /** Slot variables by name: "adam/m/<param>", "adam/v/<param>" or "sgd/momentum/<param>". */
  slots: ParamMap;
}

function slotNames(config: OptimizerConfig): string[] {
  return config.method.kind === "adam" ? ["adam/m", "adam/v"] : ["sgd/momentum"];
}

/** A variable made from a fresh tensor, which is then released: tf.variable keeps its own reference. */
function ownedVariable(initial: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(initial, trainable);
  initial.dispose();
  return v;
}

export function createOptimizer(config: OptimizerConfig, params: ParamMap): Optimizer {
  const slots: ParamMap = {};
  for (const [name, p] of Object.entries(params)) {
    for (const slot of slotNames(config)) slots[`${slot}/${name}`] = ownedVariable(tf.zerosLike(p), false);
  }
  return { config, step: 0, slots };
}

export function disposeOptimizer(o: Optimizer): void {
  for (const v of Object.values(o.slots)) v.dispose();
}

export interface UpdateResult {
  /** Global norm of the gradients after NaNs were zeroed and before clipping. */
  gradNorm: number;
  lr: number;
}

/** Zeroes NaNs, measures the global norm, clips if asked, and updates every parameter with a gradient. */
export function applyGradients(
  o: Optimizer,
  params: ParamMap,
  grads: Record<string, tf.Tensor>,
): UpdateResult {
  const lr = learningRate(o.config.schedule, o.step);
  const t = o.step + 1;
  // The fast path (wasm with fast kernels on): one fused in-place pass per parameter, same arithmetic.
  const fused = fusedApplyGradients(o, params, grads, lr, t);
  if (fused !== undefined) {
    o.step += 1;
    return { gradNorm: fused, lr };
  }
  const normTensor = tf.tidy(() => {
    const clean: Record<string, tf.Tensor> = {};
    for (const [name, g] of Object.entries(grads)) clean[name] = tf.where(tf.isNaN(g), tf.zerosLike(g), g);
    const squares = Object.values(clean).map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(squares.length > 0 ? tf.addN(squares) : tf.scalar(0));
    const clip = o.config.clipNorm;
    const factor = clip === undefined ? tf.scalar(1) : tf.div(clip, tf.maximum(norm, clip));
    const m = o.config.method;
    for (const [name, raw] of Object.entries(clean)) {
      const p = params[name];
      if (!p) throw new Error(`gradient for unknown parameter ${name}`);
      const g = clip === undefined ? raw : tf.mul(raw, factor);
      if (m.kind === "adam") {
        const ms = o.slots[`adam/m/${name}`];
        const vs = o.slots[`adam/v/${name}`];
        const mNew = tf.add(tf.mul(ms, m.beta1), tf.mul(g, 1 - m.beta1));
        const vNew = tf.add(tf.mul(vs, m.beta2), tf.mul(tf.square(g), 1 - m.beta2));
        const lrT = (lr * Math.sqrt(1 - m.beta2 ** t)) / (1 - m.beta1 ** t);
        ms.assign(mNew);
        vs.assign(vNew);
        p.assign(tf.sub(p, tf.mul(tf.div(mNew, tf.add(tf.sqrt(vNew), m.epsilon)), lrT)));
      } else {
        const u = o.slots[`sgd/momentum/${name}`];
        const uNew = tf.sub(tf.mul(u, m.momentum), tf.mul(g, lr));
        u.assign(uNew);
        p.assign(tf.add(p, uNew));
      }
    }
    return norm;
  });
  const gradNorm = normTensor.dataSync()[0];
  normTensor.dispose();
  o.step += 1;
  return { gradNorm, lr };
}
