import assert from "node:assert/strict";
import { after, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../../../core/random.js";
import { selectBackend } from "../../../model/backend.js";
import { disableFastKernels } from "../../../model/fast/index.js";
import { fusedUpdateCount } from "../../../model/fast/optim.js";
import {
  applyGradients,
  createOptimizer,
  disposeOptimizer,
  finetuningOptimizer,
  type OptimizerConfig,
  pretrainingOptimizer,
} from "../../../model/optim.js";
import type { ParamMap } from "../../../model/params.js";

after(() => {
  disableFastKernels();
});

const SHAPES: Record<string, number[]> = { "w/kernel": [17, 9], "w/bias": [9], table: [50, 4] };

function values(n: number, seed: number, scale = 1): Float32Array {
  const rng = randomForRun(seed, "test/fast-optim");
  return Float32Array.from({ length: n }, () => scale * rng.uniform(-1, 1));
}

/** Three updates from fixed weights and gradients (one gradient holding NaNs); weights, slots and norms after. */
function run(config: OptimizerConfig): { arrays: Record<string, Float32Array>; norms: number[] } {
  const params: ParamMap = {};
  let seed = 1;
  for (const [name, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const initial = tf.tensor(values(n, seed++), shape);
    params[name] = tf.variable(initial);
    initial.dispose();
  }
  const o = createOptimizer(config, params);
  const norms: number[] = [];
  for (let step = 0; step < 3; step++) {
    const grads: Record<string, tf.Tensor> = {};
    for (const [name, shape] of Object.entries(SHAPES)) {
      const g = values(
        shape.reduce((a, b) => a * b, 1),
        100 * step + seed++,
        3,
      );
      if (name === "table") g[5] = Number.NaN;
      grads[name] = tf.tensor(g, shape);
    }
    norms.push(applyGradients(o, params, grads).gradNorm);
    tf.dispose(Object.values(grads));
  }
  const arrays: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries({ ...params, ...o.slots }))
    arrays[name] = v.dataSync() as Float32Array;
  disposeOptimizer(o);
  for (const v of Object.values(params)) v.dispose();
  return { arrays, norms };
}

function compare(got: ReturnType<typeof run>, want: ReturnType<typeof run>): void {
  for (let i = 0; i < want.norms.length; i++) {
    assert.ok(Math.abs(got.norms[i] - want.norms[i]) <= 1e-5 * want.norms[i], `norm ${i}`);
  }
  for (const [name, w] of Object.entries(want.arrays)) {
    const g = got.arrays[name];
    for (let i = 0; i < w.length; i++) {
      assert.ok(
        Math.abs(g[i] - w[i]) <= 1e-5 * Math.max(1, Math.abs(w[i])),
        `${name}[${i}]: ${g[i]} vs ${w[i]}`,
      );
    }
  }
}

for (const [what, config] of [
  ["Adam", pretrainingOptimizer({ lr: 1e-2, warmupSteps: 1, totalSteps: 10 })],
  ["SGD with clipping", finetuningOptimizer({ lr: 1e-2, warmupSteps: 1, totalSteps: 10 }, 0.5)],
  [
    "Adam with clipping",
    { ...pretrainingOptimizer({ lr: 1e-2, warmupSteps: 1, totalSteps: 10 }), clipNorm: 1 },
  ],
] as const) {
  test(`the fused ${what} update equals the tfjs update on the cpu backend`, async () => {
    await selectBackend("cpu");
    const want = run(config);
    const info = await selectBackend("wasm", { fastKernels: true });
    assert.equal(info.fast.fusedOptimizer, true);
    const before = tf.memory().numTensors;
    const fused = fusedUpdateCount();
    compare(run(config), want);
    assert.equal(fusedUpdateCount(), fused + 3, "the fused path ran");
    assert.equal(tf.memory().numTensors, before);
    await selectBackend("wasm", { fastKernels: false });
    compare(run(config), want);
  });
}
