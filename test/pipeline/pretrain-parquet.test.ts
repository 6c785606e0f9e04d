import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { synthesizeDataset } from "../../datasets/synth.js";
import { resolveConfig } from "../../pipeline/config.js";
import { prepareShards } from "../../pipeline/prepare.js";
import { runPretraining } from "../../pipeline/pretrain.js";
import { resampleAudio } from "../../pipeline/pretrain-data.js";
import { captionVocabulary, writeVocabulary } from "../../pipeline/vocab.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-pretrain-parquet-"));
  const data = join(dir, "howto");
  await synthesizeDataset({
    kind: "howto100m",
    out: data,
    videos: 3,
    seed: 8,
    width: 96,
    height: 64,
    fps: 10,
    minSeconds: 6,
    maxSeconds: 8,
  });
  const { vocab } = await captionVocabulary(join(data, "caption.json"), 1000, new SkipLog());
  await writeVocabulary(vocab, join(dir, "vocab.txt"));
  // Rows of at most 4 s: each 6-8 s video becomes two rows, so clips are also cut from stretches that start mid-video.
  await prepareShards({
    dataset: data,
    kind: "howto100m",
    out: join(dir, "shards"),
    numShards: 1,
    shortSide: 64,
    vocab: join(dir, "vocab.txt"),
    maxRowSeconds: 4,
  });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pretraining from Parquet shards", () => {
  it("trains from prepared shards, no ffmpeg, with the stored audio resampled to the model's rate", async () => {
    const config = resolveConfig({
      runDir: join(dir, "run"),
      data: { parquet: join(dir, "shards"), vocab: join(dir, "vocab.txt"), heldOutShare: 0 },
      train: { steps: 3, batchSize: 2, warmupSteps: 0, evalEvery: 0 },
    });
    const result = await runPretraining(config, { log: () => {}, skipFinalEval: true });
    assert.equal(result.summary.step, 3);
    const steps = (await readFile(join(dir, "run", "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((r) => r.event === "step");
    assert.equal(steps.length, 3);
    assert.ok(
      steps.every((s) => Number.isFinite(s.loss) && s.milNce > 0),
      "captions reach the MIL-NCE loss",
    );
    const position = JSON.parse(
      await readFile(join(result.summary.lastCheckpoint!, "position.json"), "utf8"),
    );
    assert.deepEqual(position.position, { epoch: 0, next: 6 });
  });

  it("needs the vocabulary the shards were tokenized with", async () => {
    const config = resolveConfig({ runDir: join(dir, "run2"), data: { parquet: join(dir, "shards") } });
    await assert.rejects(runPretraining(config, { log: () => {} }), /needs data\.vocab/);
  });

  it("resamples audio by averaging when shrinking and interpolating when growing", () => {
    assert.deepEqual(Array.from(resampleAudio(new Float32Array([1, 3, 5, 7]), 2)), [2, 6]);
    const up = resampleAudio(new Float32Array([0, 1]), 4);
    assert.deepEqual(Array.from(up), [0, 0.5, 1, 1]);
    const same = new Float32Array([1, 2]);
    assert.equal(resampleAudio(same, 2), same);
  });
});
