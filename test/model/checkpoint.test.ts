import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  checkpointJsonPath,
  loadCheckpoint,
  resizeRowsCubic,
  saveCheckpoint,
} from "../../model/checkpoint.js";
import { createOptimizer, disposeOptimizer, pretrainingOptimizer } from "../../model/optim.js";
import { decodeSafetensors, encodeSafetensors } from "../../model/safetensors.js";
import { embed, trainStep } from "../../model/step.js";
import { createModel, disposeModel } from "../../model/vatt.js";
import { syntheticBatch, testBackend, tinyTestConfig } from "./helpers.js";

let dir = "";
before(async () => {
  await testBackend();
  dir = await mkdtemp(path.join(tmpdir(), "vatt-ckpt-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const smallGeometry = {
  videoGeometry: { frames: 4, height: 32, width: 32 },
  audioGeometry: { samples: 1024 },
};

test("a checkpoint round trip gives identical outputs and optimiser state", async () => {
  const c = tinyTestConfig(smallGeometry);
  const m = createModel(c, 1);
  const opt = createOptimizer(pretrainingOptimizer({ lr: 1e-3, warmupSteps: 2, totalSteps: 10 }), m.params);
  const batch = syntheticBatch(c, 3, 2);
  for (let i = 0; i < 3; i++) trainStep(m, opt, batch, { seed: 2 });
  const file = path.join(dir, "step-3.safetensors");
  await saveCheckpoint(file, m, opt, { epoch: 0 });
  assert.deepEqual(
    (await readdir(dir)).sort(),
    ["step-3.json", "step-3.safetensors"],
    "no temporary files remain",
  );

  const restored = createModel(c, 99);
  const opt2 = createOptimizer(opt.config, restored.params);
  const info = await loadCheckpoint(file, restored, opt2);
  assert.equal(info.extra.epoch, 0);
  assert.equal(opt2.step, 3);
  assert.deepEqual(embed(restored, batch), embed(m, batch));
  for (const name of Object.keys(opt.slots))
    assert.deepEqual(opt2.slots[name].dataSync(), opt.slots[name].dataSync());
  // Training on continues identically.
  const a = trainStep(m, opt, batch, { seed: 2 });
  const b = trainStep(restored, opt2, batch, { seed: 2 });
  assert.equal(a.loss, b.loss);
  disposeOptimizer(opt);
  disposeOptimizer(opt2);
  disposeModel(m);
  disposeModel(restored);
});

test("the file parses by the public safetensors layout", async () => {
  const c = tinyTestConfig(smallGeometry);
  const m = createModel(c, 4);
  const file = path.join(dir, "spec.safetensors");
  await saveCheckpoint(file, m);
  const bytes = await readFile(file);
  // Independent parse: u64 LE header length, JSON header, data region with contiguous offsets.
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, "data starts 8-byte aligned");
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  assert.equal(header.__metadata__.format, "vatt-checkpoint");
  assert.equal(header.__metadata__.preset, "tiny");
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__") as [
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] },
  ][];
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let offset = 0;
  for (const [name, e] of entries) {
    assert.equal(e.dtype, "F32", name);
    assert.equal(e.data_offsets[0], offset, `${name} follows the previous tensor`);
    assert.equal(e.data_offsets[1] - e.data_offsets[0], 4 * e.shape.reduce((a, b) => a * b, 1), name);
    offset = e.data_offsets[1];
  }
  assert.equal(8 + n + offset, bytes.length, "nothing after the last tensor");
  const kernel = header["param/video/patch/kernel"];
  const start = 8 + n + kernel.data_offsets[0];
  const values = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + 16),
  );
  assert.deepEqual(Array.from(values), Array.from(m.params["video/patch/kernel"].dataSync().slice(0, 4)));
  assert.ok(header["state/heads/video_va/bn1/moving_mean"]);
  const json = JSON.parse(await readFile(checkpointJsonPath(file), "utf8"));
  assert.equal(json.config.preset, "tiny");
  disposeModel(m);
});

test("safetensors encode/decode round trip keeps dtypes, shapes, values and metadata", () => {
  const bytes = encodeSafetensors(
    {
      b: { dtype: "I32", shape: [3], data: Int32Array.from([1, -2, 3]) },
      a: { dtype: "F32", shape: [1, 2], data: Float32Array.from([0.5, -1]) },
    },
    { note: "x" },
  );
  const d = decodeSafetensors(bytes);
  assert.deepEqual(d.metadata, { note: "x" });
  assert.deepEqual(Array.from(d.tensors.b.data), [1, -2, 3]);
  assert.deepEqual(d.tensors.a.shape, [1, 2]);
  assert.deepEqual(Array.from(d.tensors.a.data), [0.5, -1]);
});

test("positional tables are resized by a cubic spline over i / n when the input grid changes (14 -> 20)", async () => {
  // A spline with not-a-knot ends reproduces any cubic exactly, past the last knot too: column 0 is a constant,
  // column 1 the cubic f(x) = 2 - x + 3x^2 - 5x^3 sampled at x = i / 14 and read back at x = j / 20.
  const f = (x: number) => 2 - x + 3 * x * x - 5 * x ** 3;
  const rows = Float32Array.from({ length: 14 * 2 }, (_, i) => (i % 2 === 0 ? 3 : f(Math.floor(i / 2) / 14)));
  const resized = resizeRowsCubic(rows, 14, 2, 20);
  assert.equal(resized.length, 40);
  for (let j = 0; j < 20; j++) {
    assert.ok(Math.abs(resized[j * 2] - 3) < 1e-5, "a constant column stays constant");
    assert.ok(Math.abs(resized[j * 2 + 1] - f(j / 20)) < 1e-4, `the cubic at ${j}/20`);
  }
  // Not every smooth column is a cubic: a sine is followed closely, not exactly.
  const sine = Float32Array.from({ length: 14 }, (_, i) => Math.sin((2 * Math.PI * i) / 14));
  const spline = resizeRowsCubic(sine, 14, 1, 20);
  for (let j = 0; j < 19; j++) assert.ok(Math.abs(spline[j] - Math.sin((2 * Math.PI * j) / 20)) < 5e-3);
  assert.deepEqual(resizeRowsCubic(rows, 14, 2, 14), rows);

  const small = tinyTestConfig(smallGeometry);
  const m = createModel(small, 5);
  const file = path.join(dir, "grid.safetensors");
  await saveCheckpoint(file, m);
  const bigger = tinyTestConfig({
    videoGeometry: { frames: 4, height: 64, width: 48 },
    audioGeometry: { samples: 1024 },
  });
  const m2 = createModel(bigger, 6);
  await loadCheckpoint(file, m2);
  assert.deepEqual(m2.params["video/pos/vertical"].shape, [4, 64]);
  assert.deepEqual(m2.params["video/pos/horizontal"].shape, [3, 64]);
  assert.deepEqual(m2.params["video/patch/kernel"].dataSync(), m.params["video/patch/kernel"].dataSync());
  disposeModel(m);
  disposeModel(m2);
});
