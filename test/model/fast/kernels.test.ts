import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { randomForRun } from "../../../core/random.js";
import { selectBackend } from "../../../model/backend.js";
import {
  disableFastKernels,
  enableFastKernels,
  fastKernelsFromEnv,
  fastKernelsInfo,
  fastThreads,
  fusedAttention,
  fusedDropout,
  fusedOpsReady,
  planProduct,
} from "../../../model/fast/index.js";
import { loadOnnxGemm } from "../../../model/fast/onnx-gemm.js";
import { sparseUpdateCount } from "../../../model/fast/optim.js";
import { milNceLoss, nceLoss } from "../../../model/losses.js";
import {
  type BatchStats,
  batchNorm,
  dense,
  dropout,
  type ForwardContext,
  gelu,
  layerNorm,
  rmsNorm,
} from "../../../model/ops.js";
import { createOptimizer, disposeOptimizer, pretrainingOptimizer } from "../../../model/optim.js";
import { trainStep } from "../../../model/step.js";
import { encoderBlock, fusedBlock, multiHeadAttention } from "../../../model/transformer.js";
import { createModel, disposeModel } from "../../../model/vatt.js";
import { syntheticBatch, tinyTestConfig } from "../helpers.js";

let fastReason: string | undefined;

before(async () => {
  await selectBackend("wasm", { fastKernels: true, threads: 2 });
  const info = fastKernelsInfo();
  if (!info.enabled) fastReason = info.reason ?? "fast kernels unavailable";
});

after(() => {
  disableFastKernels();
});

function values(shape: number[], seed: number): Float32Array {
  const rng = randomForRun(seed, "test/kernels");
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

interface Case {
  a: number[];
  b: number[];
}

/** Shapes before transposition; each case runs with every (transposeA, transposeB). */
const CASES: Case[] = [
  { a: [5, 7], b: [7, 3] }, // plain 2D
  { a: [1, 5, 7], b: [1, 7, 3] }, // batch of one
  { a: [4, 5, 7], b: [4, 7, 3] }, // batched
  { a: [2, 3, 5, 7], b: [2, 3, 7, 3] }, // two batch axes (attention)
  { a: [4, 5, 7], b: [7, 3] }, // batched left, shared right (folded into rows)
  { a: [5, 7], b: [4, 7, 3] }, // shared left, batched right
  { a: [4, 5, 7], b: [1, 7, 3] }, // broadcast batch of one
  { a: [64, 33], b: [33, 130] }, // larger, odd sizes
];

function transposeLast(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = shape.slice();
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
  return s;
}

/** Whether an operand's batch is broadcast (tfjs's matMul gradient does not reduce it back, on any backend). */
function broadcast(own: number[], other: number[]): boolean {
  const batch = (s: number[]) => s.slice(0, -2).reduce((x, y) => x * y, 1);
  return batch(own) < batch(other);
}

/**
 * matMul(a, b) and the gradients of sum(matMul(a, b) * w) with respect to each operand that is not broadcast (and
 * the bias, when fused with one) on the current backend.
 */
function productAndGrads(
  c: Case,
  ta: boolean,
  tb: boolean,
  fused?: { bias: boolean; activation: "linear" | "relu" },
): Float32Array[] {
  const aShape = transposeLast(c.a, ta);
  const bShape = transposeLast(c.b, tb);
  return tf.tidy(() => {
    const a = tf.tensor(values(aShape, 1), aShape);
    const b = tf.tensor(values(bShape, 2), bShape);
    const product = (x: tf.Tensor, yb: tf.Tensor, bb?: tf.Tensor): tf.Tensor =>
      fused
        ? tf.fused.matMul({
            a: x as tf.Tensor2D,
            b: yb as tf.Tensor2D,
            transposeA: ta,
            transposeB: tb,
            bias: bb,
            activation: fused.activation,
          })
        : tf.matMul(x, yb, ta, tb);
    const n = (tb ? bShape[bShape.length - 2] : bShape[bShape.length - 1]) as number;
    const bias = fused?.bias ? tf.tensor1d(values([n], 4)) : undefined;
    const y = product(a, b, bias);
    const w = tf.tensor(values(y.shape, 3), y.shape);
    const out: tf.Tensor[] = [y];
    if (!broadcast(c.a, c.b)) out.push(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(product(x, b, bias), w)))(a));
    if (!broadcast(c.b, c.a)) out.push(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(product(a, x, bias), w)))(b));
    if (bias) out.push(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(product(a, b, x), w)))(bias));
    return out.map((t) => t.dataSync() as Float32Array);
  });
}

function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-4 * Math.max(1, Math.abs(want[i]));
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      assert.fail(`${what}[${i}]: ${got[i]} vs cpu ${want[i]}`);
    }
  }
}

async function onBackend<T>(name: "cpu" | "wasm", f: () => T): Promise<T> {
  await tf.setBackend(name);
  return f();
}

test("BatchMatMul values and gradients match the cpu backend for every transpose and batch case", async (t) => {
  if (fastReason) return t.skip(fastReason);
  for (const c of CASES) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const want = await onBackend("cpu", () => productAndGrads(c, ta, tb));
        const got = await onBackend("wasm", () => productAndGrads(c, ta, tb));
        const what = `a ${c.a} b ${c.b} transposeA=${ta} transposeB=${tb}`;
        assert.equal(got.length, want.length);
        assert.ok(want.length >= 2, `${what}: at least one gradient checked`);
        want.forEach((w, i) => {
          assertClose(got[i], w, `${what}: ${i === 0 ? "value" : `gradient ${i}`}`);
        });
      }
    }
  }
});

test("_FusedMatMul (bias, relu) values and gradients match the cpu backend for every transpose", async (t) => {
  if (fastReason) return t.skip(fastReason);
  const c: Case = { a: [6, 9], b: [9, 5] };
  for (const fused of [
    { bias: true, activation: "linear" as const },
    { bias: true, activation: "relu" as const },
    { bias: false, activation: "relu" as const },
  ]) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const want = await onBackend("cpu", () => productAndGrads(c, ta, tb, fused));
        const got = await onBackend("wasm", () => productAndGrads(c, ta, tb, fused));
        const what = `fused ${JSON.stringify(fused)} transposeA=${ta} transposeB=${tb}`;
        want.forEach((w, i) => {
          assertClose(got[i], w, `${what}: output ${i}`);
        });
      }
    }
  }
});

test("the fast kernels leave no tensors or heap data behind", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  const a = tf.tensor3d(values([3, 4, 5], 1), [3, 4, 5]);
  const b = tf.tensor2d(values([5, 2], 2), [5, 2]);
  tf.dispose(tf.tidy(() => tf.matMul(a, b)));
  const before = tf.memory().numTensors;
  const dataIds = tf.engine().backend.numDataIds();
  for (let i = 0; i < 5; i++) {
    tf.dispose(tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.matMul(x, b, false, false)))(a)));
    tf.dispose(
      tf.tidy(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, true, false)))([a, a])),
    );
    tf.dispose(
      tf.tidy(() =>
        tf.fused.matMul({ a: a.reshape([12, 5]) as tf.Tensor2D, b, bias: tf.ones([2]), activation: "relu" }),
      ),
    );
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.engine().backend.numDataIds(), dataIds);
  if (fusedOpsReady()) {
    // Native calls refused for bad arguments free the outputs they were given.
    const q = tf.zeros([2, 4, 8]);
    const k = tf.zeros([2, 5, 8]);
    const held = tf.engine().backend.numDataIds();
    assert.throws(() => fusedAttention(q, k, k, 2, 1, undefined, 0, [0, 0, 0, 0]), RangeError);
    assert.throws(() => fusedDropout(q, 1, [1, 2, 3, 1]), TypeError);
    assert.equal(tf.engine().backend.numDataIds(), held);
    tf.dispose([q, k]);
  }
  tf.dispose([a, b]);
});

test("gradients through saved tensors (shared, not cloned, on the fast path) match the cpu backend", async (t) => {
  if (fastReason) return t.skip(fastReason);
  // A small attention + norm + GELU-like graph: every op saves inputs or outputs for its gradient.
  const grads = () =>
    tf.tidy(() => {
      const x = tf.tensor3d(values([2, 6, 8], 5), [2, 6, 8]);
      const w = tf.tensor2d(values([8, 8], 6), [8, 8]);
      const f = (xi: tf.Tensor, wi: tf.Tensor) => {
        const h = tf.matMul(xi.reshape([12, 8]), wi).reshape([2, 6, 8]);
        const scores = tf.softmax(tf.matMul(h, xi, false, true));
        const mixed = tf.matMul(scores, h);
        const centred = tf.sub(mixed, tf.mean(mixed, -1, true));
        const normed = tf.mul(centred, tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), 1e-6)));
        return tf.sum(tf.mul(normed, tf.exp(tf.mul(tf.erf(normed), 0.5))));
      };
      return tf
        .grads(f)([x, w])
        .map((g) => g.dataSync() as Float32Array);
    });
  const want = await onBackend("cpu", grads);
  const before = tf.memory().numTensors;
  const got = await onBackend("wasm", grads);
  assert.equal(tf.memory().numTensors, before, "no tensor left behind");
  assertClose(got[0], want[0], "d/dx");
  assertClose(got[1], want[1], "d/dw");
});

test("gradients of gradients stay right on the fast path (saved tensors are cloned under nested tapes)", async (t) => {
  if (fastReason) return t.skip(fastReason);
  for (const backend of ["wasm", "cpu"] as const) {
    await tf.setBackend(backend);
    const value = tf.tidy(() => {
      // d/dv [ f'(v) + v ] with f(y) = y^3: 6 v + 1 = 19 at v = 3.
      const inner = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(y, tf.square(y))));
      const outer = tf.grad((v: tf.Tensor) => tf.sum(tf.add(inner(v), v)));
      return outer(tf.scalar(3)).dataSync()[0];
    });
    assert.ok(Math.abs(value - 19) < 1e-4, `${backend}: ${value}`);
  }
  await tf.setBackend("wasm");
});

test("the fused GELU kernel's values and gradients match tfjs's composed GELU on the cpu backend", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const x = values([3, 7, 33], 8).map((v) => v * 6); // [-6, 6]: both tails and the middle
  const weights = values([3, 7, 33], 9);
  const run = () =>
    tf.tidy(() => {
      const xt = tf.tensor3d(x, [3, 7, 33]);
      const w = tf.tensor3d(weights, [3, 7, 33]);
      const f = (v: tf.Tensor) => tf.sum(tf.mul(gelu(v), w));
      return [gelu(xt).dataSync() as Float32Array, tf.grad(f)(xt).dataSync() as Float32Array];
    });
  const want = await onBackend("cpu", run);
  const before = tf.memory().numTensors;
  const got = await onBackend("wasm", run);
  assert.equal(tf.memory().numTensors, before);
  assertClose(got[0], want[0], "gelu");
  assertClose(got[1], want[1], "d gelu");
});

test("the fused LayerNorm and RMS norm kernels' values and gradients match tfjs's composed ones on cpu", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const shape = [2, 9, 48];
  const x = values(shape, 10).map((v, i) => v * 3 + (i % 48 === 0 ? 5 : 0)); // an offset feature: mean matters
  const weights = values(shape, 11);
  const run = () =>
    tf.tidy(() => {
      const xt = tf.tensor(x, shape);
      const gamma = tf.tensor1d(values([48], 12).map((v) => 1 + v / 2));
      const beta = tf.tensor1d(values([48], 13));
      const w = tf.tensor(weights, shape);
      const ln = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, g, b, 1e-6), w));
      const rms = (a: tf.Tensor, g: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a, g, 1e-6), w));
      return [
        layerNorm(xt, gamma, beta, 1e-6),
        ...tf.grads(ln)([xt, gamma, beta]),
        rmsNorm(xt, gamma, 1e-6),
        ...tf.grads(rms)([xt, gamma]),
      ].map((v) => v.dataSync() as Float32Array);
    });
  const want = await onBackend("cpu", run);
  const before = tf.memory().numTensors;
  const got = await onBackend("wasm", run);
  assert.equal(tf.memory().numTensors, before);
  const names = ["layer norm", "d/dx", "d/dgamma", "d/dbeta", "rms norm", "d/dx", "d/dscale"];
  for (const [i, name] of names.entries()) assertClose(got[i], want[i], name);
});

test("the fused dropout and attention kernels' values and gradients match the composed ops on cpu", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  // Head sizes: 5 takes the scalar loops, 16, 48 and 64 the vector ones; token counts leave part-filled 16-key
  // chunks and 1 to 3 query rows after the blocks of 4.
  for (const [b, n, heads, dh] of [
    [3, 11, 2, 5],
    [2, 19, 2, 16],
    [2, 33, 1, 64],
    [2, 70, 1, 48],
  ]) {
    const shape = [b, n, heads * dh];
    const weights = values(shape, 20);
    // Text-like bias: a learned [1, H, N, N] table plus a padding mask hiding the last keys of item 1.
    const table = values([1, heads, n, n], 21);
    const padding = Float32Array.from({ length: b * n }, (_, i) => (i >= n && i % n >= n - 4 ? -1e9 : 0));
    const run = (rate: number) =>
      tf.tidy(() => {
        // A fresh generator per run: both backends draw the same dropout masks.
        const ctx = (): ForwardContext => ({
          training: true,
          dropout: rate,
          rng: randomForRun(7, "test/attn"),
        });
        const [q, k, v] = [22, 23, 24].map((seed) =>
          tf.tensor(
            values(shape, seed).map((x) => x * 2),
            shape,
          ),
        );
        const rel = tf.tensor(table, [1, heads, n, n]);
        const w = tf.tensor(weights, shape);
        const bias = (r: tf.Tensor) => tf.add(r, tf.tensor(padding, [b, 1, 1, n]));
        const plain = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
          tf.sum(tf.mul(multiHeadAttention(a, c, d, heads, 0.7, undefined, ctx()), w));
        const biased = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor, r: tf.Tensor) =>
          tf.sum(tf.mul(multiHeadAttention(a, c, d, heads, 1, bias(r), ctx()), w));
        const mask = tf.tensor(padding, [b, 1, 1, n]); // broadcasts: spread to [B, H, N, N] on the fast path
        const masked = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
          tf.sum(tf.mul(multiHeadAttention(a, c, d, heads, 0.5, mask, ctx()), w));
        const dropped = (a: tf.Tensor) => tf.sum(tf.mul(dropout(a, ctx()), w));
        return [
          multiHeadAttention(q, k, v, heads, 0.7, undefined, ctx()),
          ...tf.grads(plain)([q, k, v]),
          multiHeadAttention(q, k, v, heads, 1, bias(rel), ctx()),
          ...tf.grads(biased)([q, k, v, rel]),
          ...tf.grads(masked)([q, k, v]),
          dropout(q, ctx()),
          tf.grad(dropped)(q),
        ].map((x) => x.dataSync() as Float32Array);
      });
    const names = ["attention", "d/dq", "d/dk", "d/dv", "biased", "d/dq", "d/dk", "d/dv", "d/dtable"];
    for (const rate of [0, 0.3]) {
      const want = await onBackend("cpu", () => run(rate));
      const before = tf.memory().numTensors;
      const got = await onBackend("wasm", () => run(rate));
      assert.equal(tf.memory().numTensors, before);
      for (const [i, name] of [...names, "masked d/dq", "d/dk", "d/dv", "dropout", "d dropout"].entries()) {
        assertClose(got[i], want[i], `${name} (dropout ${rate}, head ${dh})`);
      }
      // The padding hides keys: no gradient reaches their values in item 1.
      const dv = got[7];
      for (let j = n - 4; j < n; j++)
        assert.equal(dv[(n + j) * heads * dh], 0, `masked key ${j} gets no gradient`);
    }
  }
});

test("Sum over leading axes (bias gradients), same-dtype Cast, row gathers and scatters match the cpu backend", async (t) => {
  if (fastReason) return t.skip(fastReason);
  const shape = [3, 5, 7];
  const x = values(shape, 30);
  const cases: { axis: number | number[]; keepDims: boolean }[] = [
    { axis: 0, keepDims: false },
    { axis: [0, 1], keepDims: false },
    { axis: [1, 0], keepDims: true },
    { axis: -3, keepDims: false },
    { axis: [0, 2], keepDims: false }, // not leading: the stock kernel
    { axis: 2, keepDims: true },
    { axis: [0, 1, 2], keepDims: false },
  ];
  const run = () =>
    tf.tidy(() => {
      const xt = tf.tensor(x, shape);
      const sums = cases.map((c) => tf.sum(xt, c.axis, c.keepDims));
      const viaBias = tf.grad((b: tf.Tensor) => tf.sum(tf.mul(tf.add(xt, b), xt)))(tf.zeros([7]));
      const gathers = [
        tf.gather(xt, tf.tensor1d([2, 0, 2, 1], "int32")), // rows (the fast kernel)
        tf.gather(tf.cast(xt, "int32"), tf.tensor2d([1, 2, 0, 0], [2, 2], "int32")), // int rows, 2-D indices
        tf.gather(xt, tf.tensor1d([6, 0], "int32"), 2), // another axis: the stock kernel
      ];
      const scatters = [
        // rows, duplicates summed (the fast kernel); 3-D rows; 2-D indices (a batch of index rows)
        tf.scatterND(tf.tensor2d([2, 0, 2], [3, 1], "int32"), xt.reshape([3, 35]), [4, 35]),
        tf.scatterND(tf.tensor2d([1, 1, 0], [3, 1], "int32"), xt, [2, 5, 7]),
        tf.scatterND(tf.tensor3d([0, 3, 1], [3, 1, 1], "int32"), xt.reshape([3, 1, 35]), [5, 35]),
        tf.scatterND(tf.tensor2d([0, 1, 1, 2], [2, 2], "int32"), tf.tensor1d([5, 6]), [3, 3]), // not rows: stock
      ];
      return [...sums, viaBias, tf.cast(xt, "float32"), tf.cast(xt, "int32"), ...gathers, ...scatters].map(
        (v) => ({
          shape: v.shape,
          data: Float32Array.from(v.dataSync()),
        }),
      );
    });
  const want = await onBackend("cpu", run);
  const got = await onBackend("wasm", run);
  for (const [i, w] of want.entries()) {
    assert.deepEqual(got[i].shape, w.shape, `case ${i} shape`);
    assertClose(got[i].data, w.data, `case ${i}`);
  }
  const before = tf.memory().numTensors;
  assert.throws(
    () => tf.tidy(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([3], "int32"))),
    /index 3 is not in \[0, 2\]/,
  );
  assert.throws(
    () => tf.tidy(() => tf.scatterND(tf.tensor2d([4], [1, 1], "int32"), tf.ones([1, 2]), [3, 2])),
    /ScatterNd: index 4 is not in \[0, 2\]/,
  );
  assert.equal(tf.memory().numTensors, before);
});

test("fused dense layers' values and gradients match the composed ops on cpu, for any rank and empty sizes", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const cases: { x: number[]; dout: number; bias: boolean }[] = [
    { x: [3, 5, 7], dout: 4, bias: true },
    { x: [6, 9], dout: 11, bias: false },
    { x: [2, 2, 3, 8], dout: 5, bias: true },
    { x: [8], dout: 3, bias: true }, // one row
    { x: [0, 4], dout: 3, bias: true }, // no rows: empty output, zero kernel gradient
    { x: [2, 0], dout: 3, bias: true }, // no features: the bias alone
  ];
  for (const c of cases) {
    const din = c.x[c.x.length - 1];
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor(values(c.x, 40), c.x);
        const kernel = tf.tensor2d(values([din, c.dout], 41), [din, c.dout]);
        const bias = c.bias ? tf.tensor1d(values([c.dout], 42)) : undefined;
        const y = dense(x, kernel, bias);
        const w = tf.tensor(values(y.shape, 43), y.shape);
        const f = (a: tf.Tensor, k: tf.Tensor, b?: tf.Tensor) => tf.sum(tf.mul(dense(a, k, b), w));
        const grads = bias
          ? tf.grads((a: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => f(a, k, b))([x, kernel, bias])
          : tf.grads((a: tf.Tensor, k: tf.Tensor) => f(a, k))([x, kernel]);
        return [y, ...grads].map((v) => ({ shape: v.shape, data: v.dataSync() as Float32Array }));
      });
    const want = await onBackend("cpu", run);
    const before = tf.memory().numTensors;
    const got = await onBackend("wasm", run);
    assert.equal(tf.memory().numTensors, before);
    for (const [i, w] of want.entries()) {
      assert.deepEqual(got[i].shape, w.shape, `${c.x} case ${i} shape`);
      assertClose(got[i].data, w.data, `${c.x} output ${i}`);
    }
  }
});

test("the fused contrastive loss and BatchNorm match the composed ops on cpu, masks included", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const b = 5;
  const d = 7;
  const masks: { k: number; mask: number[] }[] = [
    { k: 3, mask: new Array(15).fill(1) },
    { k: 3, mask: [1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1] }, // some captions missing, sample 2 has none
    { k: 1, mask: [1, 1, 0, 1, 1] }, // NCE: one clip without audio
    { k: 2, mask: new Array(10).fill(0) }, // nothing valid: loss and gradients 0
  ];
  for (const { k, mask } of masks) {
    const run = () =>
      tf.tidy(() => {
        // A zero row checks the norm's floor.
        const video = tf.tensor2d(
          values([b, d], 50).map((v, i) => (i < d ? 0 : v)),
          [b, d],
        );
        const text = tf.tensor2d(values([b * k, d], 51), [b * k, d]);
        const m = tf.tensor2d(mask, [b, k]);
        const f = (v: tf.Tensor, x: tf.Tensor) =>
          k === 1 ? nceLoss(v, x, m.reshape([b]), 0.1) : milNceLoss(v, x, m, 0.1);
        return [f(video, text), ...tf.grads(f)([video, text])].map((v) => v.dataSync() as Float32Array);
      });
    const want = await onBackend("cpu", run);
    const before = tf.memory().numTensors;
    const got = await onBackend("wasm", run);
    assert.equal(tf.memory().numTensors, before);
    for (const [i, name] of ["loss", "d/dvideo", "d/dtext"].entries()) {
      assertClose(got[i], want[i], `K=${k} mask ${mask.join("")} ${name}`);
    }
  }
  const shape = [6, 5];
  const run = () =>
    tf.tidy(() => {
      const x = tf.tensor2d(
        values(shape, 52).map((v, i) => v * 3 + (i % 5)),
        [6, 5],
      );
      const gamma = tf.tensor1d(values([5], 53).map((v) => 1 + v / 2));
      const beta = tf.tensor1d(values([5], 54));
      const w = tf.tensor2d(values(shape, 55), [6, 5]);
      const stats: BatchStats[] = [];
      const ctx: ForwardContext = { training: true, dropout: 0, batchStats: stats };
      const state = { movingMean: tf.zeros([5]), movingVariance: tf.ones([5]) };
      const bn = (a: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) =>
        batchNorm(a as tf.Tensor2D, { gamma: g, beta: bb, ...state }, "bn", 1e-3, ctx);
      const y = bn(x, gamma, beta);
      const [mean, variance] = [stats[0].mean, stats[0].variance];
      const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(bn(a, g, bb), w)))([
        x,
        gamma,
        beta,
      ]);
      const out = [y, mean, variance, ...grads].map((v) => v.dataSync() as Float32Array);
      for (const s of stats) tf.dispose([s.mean, s.variance]);
      return out;
    });
  const want = await onBackend("cpu", run);
  const before = tf.memory().numTensors;
  const got = await onBackend("wasm", run);
  assert.equal(tf.memory().numTensors, before);
  for (const [i, name] of ["y", "mean", "variance", "d/dx", "d/dgamma", "d/dbeta"].entries()) {
    assertClose(got[i], want[i], `batch norm ${name}`);
  }
});

test("the fused encoder block (LayerNorm + biases, RMS norm + none) matches the composed block on cpu", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const [b, n, d, mlp, heads] = [2, 9, 16, 24, 2];
  const cases: { norm: "layer" | "rms"; rate: number; bias: "none" | "padding" | "learned" }[] = [
    { norm: "layer", rate: 0, bias: "none" },
    { norm: "layer", rate: 0.3, bias: "padding" },
    { norm: "rms", rate: 0, bias: "learned" },
    { norm: "rms", rate: 0.3, bias: "learned" },
  ];
  for (const c of cases) {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor3d(values([b, n, d], 60), [b, n, d]);
        const weights: Record<string, tf.Tensor> = {};
        let seed = 61;
        const add = (name: string, shape: number[], offset = 0) => {
          weights[name] = tf.tensor(
            values(shape, seed++).map((v) => offset + v / 2),
            shape,
          );
        };
        add("norm1", [d], 1);
        if (c.norm === "layer") add("norm1Beta", [d]);
        for (const w of ["q", "k", "v", "o"]) add(`w${w}`, [d, d]);
        if (c.norm === "layer") for (const w of ["q", "k", "v", "o"]) add(`b${w}`, [d]);
        add("norm2", [d], 1);
        add("norm2Beta", [d]);
        add("w1", [d, mlp]);
        add("w2", [mlp, d]);
        if (c.norm === "layer") {
          add("b1", [mlp]);
          add("b2", [d]);
        }
        const padding = tf.tensor4d(
          Array.from({ length: b * n }, (_, i) => (i === n - 1 || i === 2 * n - 2 ? -1e9 : 0)),
          [b, 1, 1, n],
        );
        const learned = tf.tensor4d(values([heads * n * n], 70), [1, heads, n, n]);
        const names = Object.keys(weights);
        const block = (xs: tf.Tensor[]) => {
          const withRel = c.bias === "learned";
          const [xin, rel] = [xs[0], withRel ? xs[1] : learned];
          const ws = xs.slice(withRel ? 2 : 1);
          const p: Record<string, tf.Tensor> = Object.fromEntries(names.map((nm, i) => [nm, ws[i]]));
          const ctx: ForwardContext = { training: true, dropout: c.rate, rng: randomForRun(5, "block") };
          const bias = c.bias === "none" ? undefined : c.bias === "padding" ? padding : tf.add(rel, padding);
          if (c.norm === "layer") {
            const prefix = "l";
            const params: Record<string, tf.Tensor> = {
              [`${prefix}/ln1/gamma`]: p.norm1,
              [`${prefix}/ln1/beta`]: p.norm1Beta,
              [`${prefix}/ln2/gamma`]: p.norm2,
              [`${prefix}/ln2/beta`]: p.norm2Beta,
              [`${prefix}/mlp/fc1/kernel`]: p.w1,
              [`${prefix}/mlp/fc1/bias`]: p.b1,
              [`${prefix}/mlp/fc2/kernel`]: p.w2,
              [`${prefix}/mlp/fc2/bias`]: p.b2,
            };
            for (const w of ["q", "k", "v", "o"]) {
              params[`${prefix}/attn/${w}/kernel`] = p[`w${w}`];
              params[`${prefix}/attn/${w}/bias`] = p[`b${w}`];
            }
            const size = { name: "t", layers: 1, hidden: d, mlp, heads };
            return encoderBlock(params as never, prefix, size, xin, 1e-6, ctx, bias);
          }
          const kind = { norm: "rms", biases: false, heads, scale: 1, eps: 1e-6 } as const;
          return (
            fusedBlock(xin, p, kind, mlp, ctx, bias) ?? composedT5Block(xin, p, heads, ctx, bias as tf.Tensor)
          );
        };
        const wOut = tf.tensor3d(values([b, n, d], 71), [b, n, d]);
        const inputs = [x, ...(c.bias === "learned" ? [learned] : []), ...names.map((nm) => weights[nm])];
        const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(block(xs), wOut)))(inputs);
        return [block(inputs), ...grads].map((v) => v.dataSync() as Float32Array);
      });
    const want = await onBackend("cpu", run);
    const before = tf.memory().numTensors;
    const got = await onBackend("wasm", run);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(got.length, want.length);
    for (const [i, w] of want.entries())
      assertClose(got[i], w, `${c.norm} rate ${c.rate} ${c.bias}: output ${i}`);
  }
});

/** model/text.ts's composed T5 layer (the cpu side of the fused block test). */
function composedT5Block(
  x: tf.Tensor,
  p: Record<string, tf.Tensor>,
  heads: number,
  ctx: ForwardContext,
  bias: tf.Tensor,
): tf.Tensor {
  const h = rmsNorm(x, p.norm1, 1e-6);
  const attended = dense(
    multiHeadAttention(dense(h, p.wq), dense(h, p.wk), dense(h, p.wv), heads, 1, bias, ctx),
    p.wo,
  );
  const x1 = tf.add(x, dropout(attended, ctx));
  const h2 = layerNorm(x1, p.norm2, p.norm2Beta, 1e-6);
  return tf.add(x1, dropout(dense(dropout(gelu(dense(h2, p.w1)), ctx), p.w2), ctx));
}

/** The tiny model on small clips (4 video, 16 audio tokens): a batch of 4 with 2 captions, and a fresh model. */
function smallTraining() {
  const c = tinyTestConfig({
    videoGeometry: { frames: 4, height: 32, width: 32 },
    audioGeometry: { samples: 2048 },
  });
  const fresh = () => {
    const m = createModel(c, 3);
    return {
      m,
      opt: createOptimizer(pretrainingOptimizer({ lr: 1e-3, warmupSteps: 1, totalSteps: 10 }), m.params),
    };
  };
  return { batch: syntheticBatch(c, 4, 2), fresh };
}

test("whole training steps on the fast path give the cpu backend's losses and BatchNorm statistics", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const { batch, fresh } = smallTraining();
  const run = () => {
    const { m, opt } = fresh();
    const results = [0, 1, 2].map(() => trainStep(m, opt, batch, { seed: 11 }));
    const moving = Object.values(m.state).map((t) => t.dataSync() as Float32Array);
    disposeOptimizer(opt);
    disposeModel(m);
    return { results, moving };
  };
  const want = await onBackend("cpu", run);
  const sparseBefore = sparseUpdateCount();
  const got = await onBackend("wasm", run);
  // The gathered tables (words, positions, relative bias) were updated reading only their touched rows.
  assert.ok(sparseUpdateCount() - sparseBefore >= 3 * 5, "row-sparse Adam updates");
  for (const [i, w] of want.results.entries()) {
    for (const key of ["loss", "nce", "milNce", "gradNorm"] as const) {
      const tol = 1e-4 * Math.max(1, Math.abs(w[key]));
      const g = got.results[i][key];
      assert.ok(Math.abs(g - w[key]) <= tol, `step ${i} ${key}: ${g} vs cpu ${w[key]}`);
    }
  }
  // BatchNorm moving statistics, updated in place on the fast path.
  for (const [i, w] of want.moving.entries()) assertClose(got.moving[i], w, `moving statistic ${i}`);
});

test("ONNX Runtime called from C gives the node binding's products, with no JavaScript objects or copies", (t) => {
  if (fastReason) return t.skip(fastReason);
  const direct = loadOnnxGemm(1).gemm;
  const binding = loadOnnxGemm(1, "node-binding").gemm;
  assert.ok(direct && binding, "both callers load");
  assert.equal(binding.caller, "node-binding");
  if (direct.caller !== "c-api")
    return t.skip("the C API caller is not available here (no native module or not Linux)");
  const cases: [number[], number[], boolean, boolean, number[]][] = [
    [[7, 5], [5, 3], false, false, [7, 3]],
    [[5, 7], [5, 3], true, false, [7, 3]],
    [[7, 5], [3, 5], false, true, [7, 3]],
    [[4, 7, 5], [4, 5, 3], false, false, [4, 7, 3]],
    [[4, 7, 5], [5, 3], false, false, [4, 7, 3]],
  ];
  for (const [dimsA, dimsB, ta, tb, dimsOut] of cases) {
    const size = (d: number[]) => d.reduce((x, y) => x * y, 1);
    const a = values(dimsA, 80);
    const b = values(dimsB, 81);
    const got = new Float32Array(size(dimsOut));
    const want = new Float32Array(size(dimsOut));
    direct.matmul(a, dimsA, b, dimsB, ta, tb, got, dimsOut);
    binding.matmul(a, dimsA, b, dimsB, ta, tb, want, dimsOut);
    assert.deepEqual(got, want, `${dimsA} x ${dimsB} ${ta} ${tb}`);
  }
  // Bad dims are refused before the library sees them.
  assert.throws(
    () =>
      direct.matmul(
        new Float32Array(6),
        [2, 3],
        new Float32Array(6),
        [3, 2],
        false,
        false,
        new Float32Array(3),
        [2, 2],
      ),
    RangeError,
  );
  direct.dispose();
  binding.dispose();
});

test("a tiny training step runs on the fused kernels (a silent fallback would be ~1,300 kernel calls)", async (t) => {
  if (fastReason) return t.skip(fastReason);
  await tf.setBackend("wasm");
  if (!fusedOpsReady()) return t.skip("native kernels not built");
  const { batch, fresh } = smallTraining();
  const { m, opt } = fresh();
  trainStep(m, opt, batch, { seed: 1 });
  const profile = await tf.profile(() => {
    trainStep(m, opt, batch, { seed: 1 });
  });
  disposeOptimizer(opt);
  disposeModel(m);
  const names = profile.kernels.map((k) => k.name);
  const count = (name: string) => names.filter((n) => n === name).length;
  // Two video, two audio and two text blocks, each one kernel forward and one backward.
  assert.equal(count("VattBlockForward"), 6);
  assert.equal(count("VattBlockBackward"), 6);
  for (const composed of ["BatchMatMul", "_FusedMatMul", "Softmax", "Erf"]) {
    assert.equal(count(composed), 0, `${composed} ran: a fused path fell back to composed ops`);
  }
  assert.ok(names.length < 300, `${names.length} kernel calls`);
});

test("shape planning folds a shared right operand's batch into rows and rejects bad shapes", () => {
  const p = planProduct([4, 5, 7], [7, 3], false, false);
  assert.deepEqual(p.dimsA, [20, 7]);
  assert.deepEqual(p.dimsOut, [20, 3]);
  assert.deepEqual(p.outShape, [4, 5, 3]);
  assert.deepEqual(planProduct([4, 7, 5], [7, 3], true, false).dimsA, [4, 7, 5]);
  assert.deepEqual(planProduct([2, 3, 5, 7], [2, 3, 3, 7], false, true).outShape, [2, 3, 5, 3]);
  assert.throws(() => planProduct([5, 7], [6, 3], false, false), /inner shapes/);
  assert.throws(() => planProduct([2, 5, 7], [3, 7, 3], false, false), /broadcast/);
});

test("the switch: VATT_FAST_KERNELS=0 and fastKernels:false keep the stock kernels; threads are configurable", async (t) => {
  assert.equal(fastKernelsFromEnv({ VATT_FAST_KERNELS: "0" }), false);
  assert.equal(fastKernelsFromEnv({ VATT_FAST_KERNELS: "off" }), false);
  assert.equal(fastKernelsFromEnv({}), true);
  assert.equal(fastThreads(undefined, { VATT_THREADS: "3" }), 3);
  assert.equal(fastThreads(1, { VATT_THREADS: "3" }), 1);
  const off = await selectBackend("wasm", { fastKernels: false });
  assert.equal(off.fast.enabled, false);
  assert.equal(fastKernelsInfo().enabled, false);
  const y = tf.tidy(() =>
    Array.from(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3, 4]]), false, true).dataSync()),
  );
  assert.deepEqual(y, [11]);
  if (fastReason) return t.skip(fastReason);
  const on = await selectBackend("wasm", { fastKernels: true, threads: 1 });
  assert.equal(on.fast.enabled, true);
  assert.equal(on.fast.threads, 1);
  assert.equal(on.fast.engine, "onnxruntime");
  const info = enableFastKernels({ threads: 2 });
  assert.equal(info.threads, 2);
});
