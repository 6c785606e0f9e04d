/**
 * Transfer jobs on a small UCF101-layout set made with ffmpeg: exact resume of fine-tuning, the 12-view evaluation
 * against a view-by-view recomputation, the feature cache reused by a second classifier, and bad input (missing
 * files, unknown classes, labels outside the class list, an empty class, a clip shorter than the window, a
 * checkpoint without the asked backbone, another preset's checkpoint).
 */
import assert from "node:assert/strict";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { selectBackend } from "../../model/backend.js";
import { saveCheckpoint } from "../../model/checkpoint.js";
import { addClassifier, inferenceLogits } from "../../model/classifier.js";
import { presetConfig } from "../../model/config.js";
import { createModel, disposeModel } from "../../model/vatt.js";
import { averageViews, evaluateClassifier, probabilities } from "../../pipeline/classify-eval.js";
import { runFinetune } from "../../pipeline/finetune.js";
import { readFeatureCache, runLinearEval } from "../../pipeline/linear-eval.js";
import {
  clipSettings,
  listRefs,
  loadBackbone,
  reportEmptyClasses,
  sliceBatch,
  testViews,
  transferTask,
} from "../../pipeline/transfer-data.js";
import { makeMedia, makeTempDir, removeDir } from "../media.js";

const quiet = () => {};
let dir: string;
let ucf: string;

/** 2 classes x 3 videos (2 train, 1 test each), plus bad lines; Blue's test video is shorter than a window. */
async function makeUcf(root: string): Promise<void> {
  for (const [cls, tone] of [
    ["Red", 300],
    ["Blue", 900],
  ] as const) {
    await mkdir(join(root, cls), { recursive: true });
    for (const g of [1, 2, 3]) {
      const seconds = cls === "Blue" && g === 1 ? 0.4 : 2;
      const file = await makeMedia(join(root, cls), `v_${cls}_g0${g}_c01`, {
        seconds,
        width: 96,
        height: 72,
        fps: 10,
        toneHz: tone,
      });
      await rename(file, file.replace(/\.mp4$/, ".avi"));
    }
  }
  await writeFile(join(root, "classInd.txt"), "1 Red\r\n2 Blue\r\n");
  await writeFile(
    join(root, "trainlist01.txt"),
    [
      "Red/v_Red_g02_c01.avi 1",
      "Blue/v_Blue_g02_c01.avi 2",
      "Red/v_Red_g03_c01.avi 1",
      "Blue/v_Blue_g03_c01.avi 2",
      "Red/v_Red_g09_c01.avi 1", // no such file
      "Red/v_Red_g03_c01.avi 7", // label outside the 2 classes
    ].join("\r\n"),
  );
  await writeFile(
    join(root, "testlist01.txt"),
    ["Red/v_Red_g01_c01.avi", "Blue/v_Blue_g01_c01.avi", "Green/v_Green_g01_c01.avi"].join("\r\n"),
  );
}

before(async () => {
  await selectBackend("auto");
  dir = await makeTempDir("vatt-transfer-");
  ucf = join(dir, "ucf101");
  await makeUcf(ucf);
});

after(async () => {
  await removeDir(dir);
});

const small = {
  "train.batchSize": 2,
  "train.warmupSteps": 1,
  "train.checkpointEvery": 2,
  "data.concurrency": 2,
  "data.decodeShortSide": 64,
};

async function stepLosses(runDir: string): Promise<Map<number, number>> {
  const lines = (await readFile(join(runDir, "metrics.jsonl"), "utf8")).trim().split("\n");
  const out = new Map<number, number>();
  for (const l of lines) {
    const r = JSON.parse(l);
    if (r.event === "step") out.set(r.step, r.loss);
  }
  return out;
}

describe("vatt finetune", () => {
  it("resumed from its checkpoint, gives the losses of a run that never stopped", async () => {
    const run = (name: string, steps: number, resume = false) =>
      runFinetune({
        checkpoint: "none",
        dataset: ucf,
        kind: "ucf101",
        modality: "video",
        layers: [small, { "train.steps": steps }],
        runDir: join(dir, name),
        resume,
        skipEval: true,
        log: quiet,
      });
    const straight = await run("straight", 4);
    assert.equal(straight.summary.step, 4);
    await run("resumed", 2);
    const second = await run("resumed", 4, true);
    assert.equal(second.summary.stepsThisRun, 2);
    const a = await stepLosses(join(dir, "straight"));
    const b = await stepLosses(join(dir, "resumed"));
    for (const step of [1, 2, 3, 4]) {
      assert.ok(Number.isFinite(a.get(step)), `step ${step} logged`);
      assert.ok(
        Math.abs(a.get(step)! - b.get(step)!) < 1e-5,
        `step ${step}: ${a.get(step)} vs ${b.get(step)}`,
      );
    }
    // The first loss is the smoothed cross-entropy of a near-uniform 2-way classifier: about log 2.
    assert.ok(Math.abs(a.get(1)! - Math.log(2)) < 0.5, `first loss ${a.get(1)}`);
    const saved = JSON.parse(await readFile(join(dir, "straight", "config.json"), "utf8"));
    assert.equal(saved.finetune.train.batchSize, 2);
    assert.deepEqual(saved.classes, ["Red", "Blue"]);
    // Counted once per pass over the split file (as pretraining counts a bad file each epoch).
    assert.ok(straight.skips["ucf101:missing-file"] >= 1, "the missing file is a counted skip");
    assert.ok(straight.skips["ucf101:bad-row"] >= 1, "the label outside the class list is a counted skip");
  });

  it("a checkpoint without the asked backbone, or of another preset, is one clear line", async () => {
    const ft = join(dir, "straight");
    await assert.rejects(
      loadBackbone({ checkpoint: ft, modality: "audio", seed: 0 }),
      /has no audio backbone \(it holds classifier, video\).*--modality video/,
    );
    await assert.rejects(
      loadBackbone({ checkpoint: ft, modality: "video", preset: "BBS", seed: 0 }),
      /is preset 'tiny', not 'BBS'/,
    );
    await assert.rejects(
      loadBackbone({ checkpoint: join(dir, "nowhere"), modality: "video", seed: 0 }),
      /does not exist/,
    );
  });

  it("loads a pretraining checkpoint's backbone at a new resolution (positional tables resized)", async () => {
    const full = createModel(presetConfig("tiny")!, 5);
    const file = join(dir, "pre", "model.safetensors");
    await saveCheckpoint(file, full);
    const loaded = await loadBackbone({ checkpoint: file, modality: "video", resolution: 96, seed: 0 });
    assert.deepEqual(loaded.model.params["video/pos/vertical"].shape, [6, 64]);
    assert.deepEqual(
      Array.from(loaded.model.params["video/layer_0/mlp/fc1/kernel"]?.dataSync() ?? []).slice(0, 5),
      Array.from(full.params["video/layer_0/mlp/fc1/kernel"]?.dataSync() ?? []).slice(0, 5),
    );
    assert.equal(loaded.model.params["audio/patch/kernel"], undefined, "only the video backbone is kept");
    disposeModel(full);
    disposeModel(loaded.model);
  });
});

describe("classifier evaluation", () => {
  it("averages the logits of 4 windows x 3 crops, then softmax: the same as view-by-view inference", async () => {
    const skips = new SkipLog();
    const backbone = await loadBackbone({ checkpoint: "none", modality: "video", seed: 1 });
    const model = addClassifier(backbone.model, { modality: "video", classes: 2, multiLabel: false }, 1);
    const settings = clipSettings(model.config, "video", {
      fps: 10,
      stride: 1,
      shortSide: 64,
      decoder: "auto",
      timeoutMs: 30_000,
      concurrency: 2,
      buffer: 2,
    });
    const task = await transferTask("ucf101", ucf, 1, { windowSeconds: 0.8 }, skips);
    const refs = await listRefs(task.test);
    assert.equal(refs.length, 2, "the line of an unknown class is skipped");
    assert.equal(skips.byReason()["ucf101:bad-row"], 1);
    // View by view, one forward each, averaged by hand.
    const expected: number[][] = [];
    let looped = 0;
    for await (const v of testViews(refs, settings, 4, 3, skips)) {
      assert.equal(v.views, 12);
      if (v.looped) looped++;
      const sum = [0, 0];
      for (let i = 0; i < v.views; i++) {
        const l = inferenceLogits(model, "video", sliceBatch(v.batch, i, i + 1));
        sum[0] += l[0] / 12;
        sum[1] += l[1] / 12;
      }
      const m = Math.max(sum[0], sum[1]);
      const e = sum.map((x) => Math.exp(x - m));
      expected.push(e.map((x) => x / (e[0] + e[1])));
    }
    assert.equal(looped, 1, "the 0.4 s clip is shorter than the 0.8 s window and loops");
    const report = await evaluateClassifier({
      model,
      modality: "video",
      refs,
      classes: task.classes,
      multiLabel: false,
      settings,
      windows: 4,
      crops: 3,
      batchSize: 5,
      skips,
    });
    assert.equal(report.videos, 2);
    assert.equal(report.views, 12);
    const hits = expected.filter((p, i) => p[refs[i].labels[0]] > p[1 - refs[i].labels[0]]).length;
    assert.equal(report.figures.top1, hits / 2);
    assert.equal(report.chance.top1, 0.5);
    disposeModel(model);
  });

  it("averageViews and probabilities on hand values", () => {
    const avg = averageViews(Float32Array.from([1, 3, 3, 5, 0, 0, 2, 2]), 2, 2);
    assert.deepEqual(Array.from(avg), [2, 4, 1, 1]);
    const p = probabilities(Float32Array.from([0, Math.log(3)]), 2, false);
    assert.ok(Math.abs(p[1] - 0.75) < 1e-6);
    const s = probabilities(Float32Array.from([0]), 1, true);
    assert.equal(s[0], 0.5);
  });
});

describe("linear evaluation", () => {
  it("caches features as Parquet: a second classifier reads them instead of extracting again", async () => {
    const out = join(dir, "linear");
    const common = {
      checkpoint: "none",
      dataset: ucf,
      kind: "ucf101" as const,
      modality: "video" as const,
      splits: [1],
      outDir: out,
      epochs: 20,
      shortSide: 64,
      concurrency: 2,
      log: quiet,
    };
    const first = await runLinearEval({ ...common, classifier: "lowrank" });
    assert.deepEqual(first.splits[0].featuresCached, { train: false, test: false });
    assert.equal(first.splits[0].train, 4);
    assert.equal(first.splits[0].test, 2);
    const files = (await import("node:fs/promises")).readdir(join(out, "features"));
    const parquet = (await files).filter((f) => f.endsWith(".parquet"));
    assert.equal(parquet.length, 2);
    const stamps = await Promise.all(
      parquet.map((f) => stat(join(out, "features", f)).then((s) => s.mtimeMs)),
    );
    const second = await runLinearEval({ ...common, classifier: "svm" });
    assert.deepEqual(second.splits[0].featuresCached, { train: true, test: true });
    const again = await Promise.all(
      parquet.map((f) => stat(join(out, "features", f)).then((s) => s.mtimeMs)),
    );
    assert.deepEqual(again, stamps, "the cached files are not rewritten");
    const rows = await readFeatureCache(join(out, "features", parquet[0]));
    assert.equal(rows.features.dim, 64);
    assert.ok([4, 8].includes(rows.features.samples), `${rows.features.samples} rows: 4 train or 2 x 4 test`);
    const third = await runLinearEval({ ...common, classifier: "lowrank" });
    assert.deepEqual(third.figures, first.figures, "the same features and seed give the same figures");
  });

  it("names a class that has no training videos", async () => {
    const root = join(dir, "folders");
    for (const [split, cls] of [
      ["train", "Red"],
      ["test", "Red"],
      ["test", "Blue"],
    ])
      await mkdir(join(root, split, cls), { recursive: true });
    await mkdir(join(root, "train", "Blue"), { recursive: true }); // empty
    await writeFile(join(root, "train", "Red", "a.mp4"), "");
    await writeFile(join(root, "test", "Red", "b.mp4"), "");
    await writeFile(join(root, "test", "Blue", "c.mp4"), "");
    await mkdir(join(root, "test", "Green"), { recursive: true });
    await writeFile(join(root, "test", "Green", "d.mp4"), "");
    const skips = new SkipLog();
    const task = await transferTask("folders", root, 1, { windowSeconds: 0.8 }, skips);
    assert.deepEqual(task.classes, ["Blue", "Red"]);
    reportEmptyClasses(task, await listRefs(task.train), skips);
    assert.match(skips.lastEvents().at(-1)?.message ?? "", /class 'Blue' .* has no training videos/);
    const test = await listRefs(task.test);
    assert.equal(test.length, 2, "the test class unknown to training is skipped");
    assert.equal(skips.byReason()["folders:label-outside-classes"], 1);
    await assert.rejects(
      transferTask("ucf101", root, 1, {}, skips),
      /UCF101 file '.*classInd.txt' does not exist/,
    );
    await assert.rejects(transferTask("ucf101", ucf, 4, {}, skips), /--split 4 does not exist for ucf101/);
  });
});
