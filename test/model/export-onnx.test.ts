import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { randomForRun } from "../../core/random.js";
import type { ModelConfig } from "../../model/config.js";
import {
  audioEncoderOnnx,
  type ExportedEncoder,
  textEncoderOnnx,
  videoEncoderOnnx,
} from "../../model/export-onnx.js";
import { encodeModel, OPSET } from "../../model/onnx-graph.js";
import { embed } from "../../model/step.js";
import { createModel } from "../../model/vatt.js";
import { requireOnnxRuntime } from "../../native/onnxruntime.js";
import { testBackend, tinyTestConfig } from "./helpers.js";
import { randomisedModel } from "./random-weights.js";

// Through vatt's loader: ONNX Runtime's telemetry (a /tmp/mat-debug-PID.log per process) stays off.
const ort = requireOnnxRuntime<typeof import("onnxruntime-node")>("onnxruntime-node");

before(async () => {
  await testBackend();
});

function uniform(n: number, seed: number, purpose: string): Float32Array {
  const rng = randomForRun(seed, purpose);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, "same number of values");
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN propagates as a failure
  }
  return worst;
}

async function run(
  encoder: ExportedEncoder,
  feeds: Record<string, InstanceType<typeof ort.Tensor>>,
): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(encodeModel(encoder.model));
  try {
    const result = await session.run(feeds);
    return Object.fromEntries(Object.entries(result).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

const TOLERANCE = 1e-4;
const measured: Record<string, number> = {};

function close(what: string, onnx: Float32Array, tfjs: Float32Array | undefined): void {
  assert.ok(tfjs, `${what}: tfjs gave no output`);
  const d = maxAbsDiff(onnx, tfjs);
  measured[what] = Math.max(measured[what] ?? 0, d);
  assert.ok(d <= TOLERANCE, `${what}: max abs difference ${d} > ${TOLERANCE}`);
  // The comparison means something: the embeddings are not all (near) zero.
  assert.ok(Math.max(...tfjs.map(Math.abs)) > 0.05, `${what}: embeddings are trivially small`);
}

/** Word ids with rows of every padding length: full, partial, one word, none. */
function textIds(rows: number, words: number, vocab: number, seed: number): Int32Array {
  const rng = randomForRun(seed, "test/export-onnx/text");
  const lengths = [words, 5, 1, 0, 9, 13];
  const ids = new Int32Array(rows * words);
  for (let r = 0; r < rows; r++) {
    for (let w = 0; w < lengths[r % lengths.length]; w++) ids[r * words + w] = 1 + rng.int(vocab - 1);
  }
  return ids;
}

async function checkAll(config: ModelConfig, label: string, batches: number[]): Promise<void> {
  const m = randomisedModel(config, 7);
  const video = videoEncoderOnnx(m);
  const audio = audioEncoderOnnx(m);
  const text = textEncoderOnnx(m);
  const g = config.videoGeometry;
  const words = config.textConfig.maxWords;
  for (const b of batches) {
    const frames = uniform(b * g.frames * g.height * g.width * 3, b, "test/export-onnx/video");
    const waves = uniform(b * config.audioGeometry.samples, b, "test/export-onnx/audio");
    const ids = textIds(b, words, config.textConfig.vocabSize, b);
    const want = embed(m, { size: b, video: frames, audio: waves, textIds: ids });
    const v = await run(video, {
      video: new ort.Tensor("float32", frames, [b, g.frames, g.height, g.width, 3]),
    });
    close(`${label} video_va`, v.video_va, want.videoVa);
    close(`${label} video_vt`, v.video_vt, want.videoVt);
    close(`${label} video pooled`, v.pooled, want.videoPooled);
    const a = await run(audio, {
      audio: new ort.Tensor("float32", waves, [b, config.audioGeometry.samples]),
    });
    close(`${label} audio_va`, a.audio_va, want.audioVa);
    close(`${label} audio pooled`, a.pooled, want.audioPooled);
    const t = await run(text, { tokens: new ort.Tensor("int32", ids, [b, words]) });
    close(`${label} text_vt`, t.text_vt, want.textVt);
    close(`${label} text pooled`, t.pooled, want.textPooled);
  }
  for (const v of [...Object.values(m.params), ...Object.values(m.state)]) v.dispose();
}

describe("ONNX export", () => {
  it("declares its inputs and outputs with a symbolic batch", () => {
    const m = createModel(tinyTestConfig(), 1);
    const g = m.config.videoGeometry;
    const video = videoEncoderOnnx(m);
    assert.deepEqual(video.inputs, [
      { name: "video", type: "float32", shape: ["batch", g.frames, g.height, g.width, 3] },
    ]);
    assert.deepEqual(
      video.outputs.map((o) => [o.name, o.shape]),
      [
        ["video_va", ["batch", m.config.vaDim]],
        ["video_vt", ["batch", m.config.vtDim]],
        ["pooled", ["batch", m.config.video.hidden]],
      ],
    );
    assert.deepEqual(textEncoderOnnx(m).inputs[0], {
      name: "tokens",
      type: "int32",
      shape: ["batch", m.config.textConfig.maxWords],
    });
    assert.equal(video.model.opsetImport?.[0].version, OPSET);
    // Every trainable video weight and the video heads' BatchNorm state travel as initializers.
    const names = new Set(video.model.graph?.initializer?.map((t) => t.name));
    for (const name of Object.keys(m.params).filter((n) => n.startsWith("video/layer_")))
      assert.ok(names.has(name), name);
    assert.ok(names.has("heads/video_vt/bn/moving_variance"));
  });

  it("matches the tfjs inference forward of the tiny model (batch 1 and 3, text padding)", async () => {
    await checkAll(tinyTestConfig(), "tiny", [1, 3]);
  });

  it("matches VATT-MA's shared backbone", async () => {
    const config: ModelConfig = { ...tinyTestConfig(), preset: "tiny-shared", shared: true };
    await checkAll(config, "shared", [2]);
  });

  it("reports the measured differences", (t) => {
    t.diagnostic(JSON.stringify(measured));
    assert.ok(Object.keys(measured).length >= 14);
  });
});
