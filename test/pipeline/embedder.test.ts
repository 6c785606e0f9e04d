import assert from "node:assert/strict";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BackendChoice } from "../../model/backend.js";
import { saveCheckpoint } from "../../model/checkpoint.js";
import { disposeModel, type VattModel } from "../../model/vatt.js";
import { Vocabulary } from "../../operators/tokenize.js";
import { loadVatt } from "../../pipeline/embedder.js";
import { exportOnnx } from "../../pipeline/export.js";
import { saveCheckpointFolder } from "../../sinks/checkpoints.js";
import { makeMedia } from "../media.js";
import { testBackend, tinyTestConfig } from "../model/helpers.js";
import { randomisedModel } from "../model/random-weights.js";

let dir = "";
let runDir = "";
let exportDir = "";
let clip = "";
let model: VattModel;
let backend: BackendChoice;
const vocab = new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "slice", "the", "tomato", "dog", "runs"]);

before(async () => {
  backend = (await testBackend()) === "cpu" ? "cpu" : "wasm";
  dir = await mkdtemp(join(tmpdir(), "vatt-embedder-"));
  runDir = join(dir, "run");
  exportDir = join(dir, "export");
  model = randomisedModel(tinyTestConfig({ textConfig: { vocabSize: 64 } }), 5);
  await saveCheckpointFolder(runDir, 3, 1, (d) =>
    saveCheckpoint(join(d, "model.safetensors"), model, undefined, { runConfig: { data: { fps: 10 } } }),
  );
  await writeFile(join(runDir, "vocab.txt"), vocab.toText());
  await exportOnnx({ checkpoint: runDir, out: exportDir, backend });
  clip = await makeMedia(dir, "clip", { seconds: 3, width: 96, height: 72, fps: 10, audioRate: 16_000 });
});
after(async () => {
  disposeModel(model);
  await rm(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), 0);
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe("loadVatt: the embedding API", () => {
  it("the README's three lines: an export folder embeds a clip and a sentence, and compares them", async () => {
    const m = await loadVatt(exportDir);
    const [video, text] = [
      await m.embedVideo(clip, { windows: 4 }),
      (await m.embedText(["slice the tomato"]))[0],
    ];
    const similarity = m.similarity(video, text);

    assert.equal(m.engine, "onnxruntime");
    assert.ok(Math.abs(norm(video.vt!) - 1) < 1e-5 && Math.abs(norm(text.vt!) - 1) < 1e-5, "unit vectors");
    let dot = 0;
    for (let i = 0; i < text.vt!.length; i++) dot += video.vt![i] * text.vt![i];
    assert.ok(Math.abs(similarity - dot) < 1e-6, "text meets video in S_vt");
    await m.close();
  });

  it("gives the same embeddings from the checkpoint (tfjs) as from its export (onnxruntime)", async () => {
    const [onnx, tfjs] = [await loadVatt(exportDir), await loadVatt(runDir)];
    assert.equal(tfjs.engine, "tfjs");
    const [a, b] = [await onnx.embedVideo(clip, { windows: 2 }), await tfjs.embedVideo(clip, { windows: 2 })];
    assert.ok(maxAbsDiff(a.va!, b.va!) < 1e-4 && maxAbsDiff(a.vt!, b.vt!) < 1e-4);
    const [sa, sb] = [await onnx.embedAudio(clip), await tfjs.embedAudio(clip)];
    assert.ok(maxAbsDiff(sa.va!, sb.va!) < 1e-4);
    const texts = ["slice the tomato", "the dog runs", "tomato"];
    const [ta, tb] = [await onnx.embedText(texts), await tfjs.embedText(texts)];
    for (const [i, t] of ta.entries()) assert.ok(maxAbsDiff(t.vt!, tb[i].vt!) < 1e-4, texts[i]);
    // Audio meets video in S_va; audio and text share no space.
    assert.ok(Math.abs(onnx.similarity(a, sa)) <= 1 + 1e-6);
    assert.throws(() => onnx.similarity(sa, ta[0]), /share no common space/);
    await Promise.all([onnx.close(), tfjs.close()]);
  });

  it("a video's windows are embedded one by one, every clip length from the start", async () => {
    const m = await loadVatt(exportDir);
    const windows = await m.embedVideoWindows(clip);
    // 3 s of video, 0.8 s clips (8 frames at 10 fps): windows at 0, 0.8, 1.6 (a 4th would start past 3 - 0.8).
    assert.equal(windows.length, 3);
    for (const [k, s] of [0, 0.8, 1.6].entries()) {
      assert.ok(Math.abs(windows[k].start - s) < 1e-9, `window ${k} at ${s} s`);
    }
    const whole = await m.embedVideo(clip, { windows: 1, start: 0.8, end: 1.6 });
    assert.ok(maxAbsDiff(whole.vt!, windows[1].vt!) < 1e-5, "a window alone = that window embedded");
    await m.close();
  });

  it("refuses a query of only unknown words, and says which words it knows", async () => {
    const m = await loadVatt(exportDir);
    await assert.rejects(m.embedText(["zebra xylophone"]), /none of the words of 'zebra xylophone'/);
    assert.deepEqual(m.vocabularyOf("Slice the zebra!"), { known: ["slice", "the"], unknown: ["zebra"] });
    assert.equal((await m.embedText(["zebra"], { allowUnknown: true })).length, 1);
    await m.close();
  });

  it("names a missing model file of an export folder, and a path that holds no model", async () => {
    await unlink(join(exportDir, "audio.onnx"));
    await assert.rejects(loadVatt(exportDir), /has no audio.onnx: export the model again/);
    await assert.rejects(loadVatt(join(dir, "nothing-here")), /does not exist: give a run directory/);
  });
});
