import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../../model/backend.js";
import { disableFastKernels, fastKernelsInfo, setFastThreads } from "../../../model/fast/index.js";
import { type ThreadDecision, ThreadGovernor } from "../../../model/fast/thread-governor.js";
import { createOptimizer, disposeOptimizer, pretrainingOptimizer } from "../../../model/optim.js";
import { trainStep } from "../../../model/step.js";
import { createModel, disposeModel } from "../../../model/vatt.js";
import { syntheticBatch, tinyTestConfig } from "../helpers.js";

/** A governor on 1 or 2 threads whose steps take `stepSeconds(threads)` and wait `waitSeconds(step)` for data. */
function simulate(
  steps: number,
  stepSeconds: (threads: number) => number,
  waitSeconds: (step: number) => number,
) {
  const decisions: ThreadDecision[] = [];
  const used: number[] = [];
  const g = new ThreadGovernor({
    few: 1,
    many: 2,
    use: (n) => used.push(n),
    onSwitch: (e) => decisions.push(e),
    window: 4,
    cooldown: 20,
  });
  const threadsAt: number[] = [];
  for (let step = 1; step <= steps; step++) {
    threadsAt.push(g.threads);
    g.observe(step, waitSeconds(step), stepSeconds(g.threads));
  }
  return { decisions, used, threadsAt, governor: g };
}

describe("the thread governor", () => {
  it("never takes the second core while the model waits for data (a decoder-bound run such as the demo)", () => {
    const r = simulate(
      200,
      () => 0.02,
      () => 0.05,
    );
    assert.deepEqual(r.decisions, []);
    assert.deepEqual(r.used, []);
  });

  it("keeps every core when the model is the bottleneck and they pay, and gives one back when data runs short", () => {
    const r = simulate(
      60,
      (threads) => (threads === 2 ? 0.06 : 0.1),
      (step) => (step > 40 && step <= 42 ? 0.05 : 0),
    );
    assert.deepEqual(
      r.decisions.map((d) => [d.step, d.decision, d.threads]),
      [
        [4, "trial", 2],
        [8, "kept", 2],
        [42, "starved", 1],
      ],
    );
    assert.match(r.decisions[1].reason, /40 % faster \(60 ms vs 100 ms\)/);
    assert.deepEqual(r.used, [2, 1]);
    // After giving the core back it waits out the cooldown before another trial.
    assert.ok(r.threadsAt.slice(42).every((t) => t === 1));
  });

  it("goes back to one thread when a trial does not pay, and waits longer after each such trial", () => {
    const r = simulate(
      200,
      () => 0.1,
      () => 0,
    );
    const trials = r.decisions.filter((d) => d.decision === "trial").map((d) => d.step);
    const fails = r.decisions.filter((d) => d.decision === "no-gain").map((d) => d.step);
    assert.deepEqual(fails.length, trials.length);
    assert.ok(trials.length >= 2);
    // cooldown 20, then 40, then 80: trials start 4 fed steps after each cooldown ends
    assert.deepEqual(trials.slice(0, 3), [4, 8 + 20 + 3, 8 + 20 + 3 + 4 + 40 + 3]);
    assert.equal(r.governor.threads, 1);
  });
});

describe("switching threads mid-run", () => {
  after(() => disableFastKernels());

  it("gives the same training steps bit for bit as one thread throughout", async (t) => {
    const backend = await selectBackend("wasm", { fastKernels: true, threads: 1 });
    if (!backend.fast.enabled) return t.skip(backend.fast.reason ?? "fast kernels unavailable");
    const c = tinyTestConfig({
      videoGeometry: { frames: 4, height: 32, width: 32 },
      audioGeometry: { samples: 2048 },
    });
    const batch = syntheticBatch(c, 4, 2);
    const run = (threadsPerStep: number[]) => {
      const m = createModel(c, 3);
      const opt = createOptimizer(
        pretrainingOptimizer({ lr: 1e-3, warmupSteps: 1, totalSteps: 10 }),
        m.params,
      );
      const losses = threadsPerStep.map((n) => {
        setFastThreads(n);
        assert.equal(fastKernelsInfo().threads, n);
        return trainStep(m, opt, batch, { seed: 11 }).loss;
      });
      const weights = Object.values(m.params).map((p) => Array.from(p.dataSync()));
      disposeOptimizer(opt);
      disposeModel(m);
      return { losses, weights };
    };
    const one = run([1, 1, 1]);
    const switching = run([1, 2, 1]);
    assert.deepEqual(switching.losses, one.losses);
    assert.deepEqual(switching.weights, one.weights);
  });

  it("gives bit-identical products on one thread and two, on products large enough to split", async (t) => {
    const backend = await selectBackend("wasm", { fastKernels: true, threads: 1 });
    if (!backend.fast.enabled) return t.skip(backend.fast.reason ?? "fast kernels unavailable");
    const n = 512;
    const a = tf.randomUniform([n, n], -1, 1, "float32", 1);
    const b = tf.randomUniform([n, n], -1, 1, "float32", 2);
    const products = (threads: number) => {
      setFastThreads(threads);
      return [false, true].map((transposeB) =>
        tf.tidy(() => Array.from(tf.matMul(a, b, false, transposeB).dataSync())),
      );
    };
    const one = products(1);
    const two = products(2);
    setFastThreads(1);
    tf.dispose([a, b]);
    assert.deepEqual(two, one);
  });
});
