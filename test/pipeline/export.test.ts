import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ParsedArgs, parseCommandArgs, type UserError } from "../../bin/cli.js";
import { exportCommand } from "../../bin/commands/export.js";
import type { BackendChoice } from "../../model/backend.js";
import { checkpointJsonPath, saveCheckpoint } from "../../model/checkpoint.js";
import { embed } from "../../model/step.js";
import { disposeModel, type VattModel } from "../../model/vatt.js";
import { requireOnnxRuntime } from "../../native/onnxruntime.js";
import { tokenize, Vocabulary } from "../../operators/tokenize.js";
import { type ExportManifest, exportOnnx } from "../../pipeline/export.js";
import { saveCheckpointFolder } from "../../sinks/checkpoints.js";
import { testBackend, tinyTestConfig } from "../model/helpers.js";
import { randomisedModel } from "../model/random-weights.js";

// Through vatt's loader: ONNX Runtime's telemetry (a /tmp/mat-debug-PID.log per process) stays off.
const ort = requireOnnxRuntime<typeof import("onnxruntime-node")>("onnxruntime-node");

let dir = "";
let runDir = "";
let model: VattModel;
let backend: BackendChoice;
const vocab = new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "a", "dog", "runs", "on", "the", "beach"]);

before(async () => {
  backend = (await testBackend()) === "cpu" ? "cpu" : "wasm";
  dir = await mkdtemp(join(tmpdir(), "vatt-export-"));
  runDir = join(dir, "run");
  model = randomisedModel(tinyTestConfig({ textConfig: { vocabSize: 64 } }), 3);
  await saveCheckpointFolder(runDir, 12, 1, (d) =>
    saveCheckpoint(join(d, "model.safetensors"), model, undefined, { runConfig: { data: { fps: 5 } } }),
  );
  await writeFile(join(runDir, "vocab.txt"), vocab.toText());
});
after(async () => {
  disposeModel(model);
  await rm(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), 0);
}

describe("vatt export --format onnx", () => {
  it("writes loadable encoders, the vocabulary and the notes to feed them", async () => {
    const out = join(dir, "export");
    const r = await exportOnnx({ checkpoint: runDir, out, backend });
    assert.deepEqual((await readdir(out)).sort(), [
      "audio.onnx",
      "text.onnx",
      "vatt-export.json",
      "video.onnx",
      "vocab.txt",
    ]);
    assert.deepEqual((await readdir(dir)).sort(), ["export", "run"], "no temporary folder remains");
    assert.equal(await readFile(join(out, "vocab.txt"), "utf8"), vocab.toText());
    const m = JSON.parse(await readFile(join(out, "vatt-export.json"), "utf8")) as ExportManifest;
    assert.deepEqual(m, JSON.parse(JSON.stringify(r.manifest)));
    const c = model.config;
    assert.equal(m.preset, "tiny");
    assert.equal(m.checkpoint.step, null, "no optimiser was saved, and no step in extra");
    assert.equal(m.video.fps, 5);
    assert.equal(m.video.frames, c.videoGeometry.frames);
    // 8 frames at 5 fps span 1.6 s; 8192 samples over 1.6 s.
    assert.equal(m.audio.sampleRate, 5120);
    assert.equal(m.text.vocabulary, "vocab.txt");
    assert.deepEqual((m.text.tokenizer as { specialIds: unknown }).specialIds, {
      pad: 0,
      bos: 1,
      eos: 2,
      unk: 3,
    });
    assert.equal(m.embeddings.normalised, false);
    assert.deepEqual(m.models.text.inputs, [{ name: "tokens", dtype: "int32", shape: ["batch", 16] }]);

    // The files on disk, fed as a user of the folder would: captions through the tokenizer's rules.
    const words = c.textConfig.maxWords;
    const ids = new Int32Array(2 * words);
    tokenize("A dog runs on the beach!", vocab, words, ids, 0);
    tokenize("the CAT", vocab, words, ids, words);
    assert.deepEqual(Array.from(ids.subarray(words, words + 3)), [8, 3, 0]);
    const text = await ort.InferenceSession.create(join(out, "text.onnx"));
    const got = await text.run({ tokens: new ort.Tensor("int32", ids, [2, words]) });
    const want = embed(model, { size: 2, textIds: ids });
    assert.ok(maxAbsDiff(got.text_vt.data as Float32Array, want.textVt!) <= 1e-4);
    await text.release();
    const g = c.videoGeometry;
    const frames = Float32Array.from(
      { length: g.frames * g.height * g.width * 3 },
      (_, i) => Math.sin(i) * 0.9,
    );
    const video = await ort.InferenceSession.create(join(out, "video.onnx"));
    const v = await video.run({
      video: new ort.Tensor("float32", frames, [1, g.frames, g.height, g.width, 3]),
    });
    assert.ok(
      maxAbsDiff(v.video_vt.data as Float32Array, embed(model, { size: 1, video: frames }).videoVt!) <= 1e-4,
    );
    await video.release();

    // Exporting again replaces the earlier export.
    await exportOnnx({ checkpoint: join(runDir, "checkpoints", "step-000000012"), out, backend });
    assert.equal((await readdir(out)).length, 5);
  });

  it("says in one line what is wrong with a checkpoint, an --out or a --format", async () => {
    const ckpt = join(runDir, "checkpoints", "step-000000012", "model.safetensors");
    const bad = join(dir, "bad", "checkpoints", "step-000000001");
    await mkdir(bad, { recursive: true });
    const badFile = join(bad, "model.safetensors");
    const json = JSON.parse(await readFile(checkpointJsonPath(ckpt), "utf8"));
    const out = join(dir, "out-bad");

    await writeFile(badFile, (await readFile(ckpt)).subarray(0, 4000));
    await copyFile(checkpointJsonPath(ckpt), checkpointJsonPath(badFile));
    await assert.rejects(
      exportOnnx({ checkpoint: badFile, out, backend }),
      /not a readable safetensors file/,
    );

    await copyFile(ckpt, badFile);
    await writeFile(
      checkpointJsonPath(badFile),
      JSON.stringify({ ...json, config: { ...json.config, preset: "BBS" } }),
    );
    await assert.rejects(
      exportOnnx({ checkpoint: badFile, out, backend }),
      /holds weights of preset 'tiny' but its JSON describes preset 'BBS'/,
    );
    await writeFile(
      checkpointJsonPath(badFile),
      JSON.stringify({ ...json, config: { ...json.config, vaDim: 48 } }),
    );
    await assert.rejects(exportOnnx({ checkpoint: badFile, out, backend }), /does not fit its own config/);

    const aFile = join(dir, "a-file");
    await writeFile(aFile, "x");
    await assert.rejects(
      exportOnnx({ checkpoint: ckpt, out: join(aFile, "export"), backend }),
      /cannot write --out '.*a-file\/export': a part of the path is a file/,
    );
    const busy = join(dir, "busy");
    await mkdir(busy);
    await writeFile(join(busy, "notes.txt"), "mine");
    await assert.rejects(exportOnnx({ checkpoint: ckpt, out: busy, backend }), /holds other files/);
    assert.deepEqual(await readdir(busy), ["notes.txt"], "a foreign folder is left as it was");

    await assert.rejects(
      exportOnnx({ checkpoint: ckpt, out, backend, format: "tflite" as "onnx" }),
      /unknown export format 'tflite'/,
    );
    // The command's own parsing (bin/commands/export.ts): exit code 2 and one line.
    const args = parseCommandArgs(exportCommand, ["--checkpoint", ckpt, "--out", out, "--format", "tflite"]);
    assert.notEqual(args, "help");
    await assert.rejects(
      exportCommand.run(args as ParsedArgs),
      (e: UserError) =>
        e.exitCode === 2 && e.message === "vatt export: --format must be one of onnx, got 'tflite'",
    );
  });
});
