import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { DecodedClip, Example } from "../../core/records.js";
import { SkipLog } from "../../core/skips.js";
import { synthesizeDataset } from "../../datasets/synth.js";
import { augmentClip } from "../../operators/augment.js";
import { captionPositives } from "../../operators/captions.js";
import { decodeClip } from "../../operators/decode.js";
import type { Vocabulary } from "../../operators/tokenize.js";
import {
  clipAudio,
  clipFrameIndices,
  parquetClips,
  parquetExamples,
} from "../../pipeline/parquet-examples.js";
import { prepareShards } from "../../pipeline/prepare.js";
import { captionVocabulary, writeVocabulary } from "../../pipeline/vocab.js";
import { makeTempDir, removeDir } from "../media.js";

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

describe("datasets/parquet: clip geometry", () => {
  it("takes frames first + i * stride and loops them when the row ends first", () => {
    assert.deepEqual(clipFrameIndices(2, 4, 1, 10), { indices: [2, 3, 4, 5], padded: 0 });
    assert.deepEqual(clipFrameIndices(3, 4, 2, 10), { indices: [3, 5, 7, 9], padded: 0 });
    assert.deepEqual(clipFrameIndices(0, 5, 1, 3), { indices: [0, 1, 2, 0, 1], padded: 2 });
    assert.deepEqual(
      clipFrameIndices(9, 3, 1, 5),
      { indices: [4, 4, 4], padded: 2 },
      "clamped to the last frame",
    );
  });

  it("cuts audio at the offset and loops it with the picture's period, zero-padding a short source", () => {
    const src = Int16Array.from({ length: 10 }, (_, i) => i + 1);
    assert.deepEqual(Array.from(clipAudio(src, 2, 4, 4)), [3, 4, 5, 6]);
    assert.deepEqual(Array.from(clipAudio(src, 0, 7, 3)), [1, 2, 3, 1, 2, 3, 1]);
    assert.deepEqual(Array.from(clipAudio(src, 8, 4, 4)), [9, 10, 0, 0]);
  });
});

describe("datasets/parquet: training from shards", () => {
  let root: string;
  let shards: string;
  let vocab: Vocabulary;
  before(async () => {
    root = await makeTempDir("vatt-parquet-source-");
    const dataset = join(root, "howto");
    await synthesizeDataset({
      kind: "howto100m",
      out: dataset,
      videos: 4,
      seed: 11,
      width: 96,
      height: 64,
      fps: 10,
      minSeconds: 6,
      maxSeconds: 9,
    });
    ({ vocab } = await captionVocabulary(join(dataset, "caption.json"), 500, new SkipLog()));
    await writeVocabulary(vocab, join(root, "vocab.txt"));
    shards = join(root, "shards");
    await prepareShards({
      dataset,
      kind: "howto100m",
      out: shards,
      numShards: 2,
      shortSide: 48,
      vocab: join(root, "vocab.txt"),
    });
  });
  after(() => removeDir(root));

  it("streams clips of the requested length, seeded: same seed same stream, workers disjoint", async () => {
    const opts = { dir: shards, seed: 5, clipsPerRow: 2, frames: 8, epochs: 2 };
    const clips = await collect(parquetClips(opts));
    assert.equal(clips.length, 4 * 2 * 2);
    for (const c of clips) {
      assert.deepEqual([c.numFrames, c.height, c.width], [8, 48, 72]);
      assert.equal(c.frames.length, 8 * 48 * 72 * 3);
      assert.equal(c.audio.length, 38_400, "0.8 s at 48 kHz");
      assert.equal(c.audioMask, 1);
      assert.ok(c.ref.captions.length > 0 && c.ref.captions.length <= 5);
    }
    const key = (c: DecodedClip) => `${c.ref.epoch}/${c.ref.index}/${c.ref.id}@${c.ref.start.toFixed(2)}`;
    const again = await collect(parquetClips(opts));
    assert.deepEqual(again.map(key), clips.map(key));
    const other = await collect(parquetClips({ ...opts, seed: 6 }));
    assert.notDeepEqual(other.map(key), clips.map(key));
    const w0 = await collect(parquetClips({ ...opts, epochs: 1, worker: { index: 0, count: 2 } }));
    const w1 = await collect(parquetClips({ ...opts, epochs: 1, worker: { index: 1, count: 2 } }));
    const ids0 = new Set(w0.map((c) => c.ref.id));
    assert.ok(
      w1.every((c) => !ids0.has(c.ref.id)),
      "each video is read by one worker",
    );
    assert.equal(new Set([...w0, ...w1].map((c) => c.ref.id)).size, 4);
  });

  it("gives the frames and audio the raw-video decoder gives for the same window", async () => {
    const [clip] = await collect(parquetClips({ dir: shards, seed: 1, frames: 16, shuffleBuffer: 0 }));
    // Stored paths are relative to the dataset folder.
    const raw = await decodeClip(
      { ...clip.ref, path: join(root, "howto", clip.ref.path) },
      { frames: 16, shortSide: 48, window: "start" },
    );
    assert.deepEqual([raw.width, raw.height, raw.numFrames], [clip.width, clip.height, clip.numFrames]);
    let diff = 0;
    for (let i = 0; i < raw.frames.length; i++) diff += Math.abs(raw.frames[i] - clip.frames[i]);
    assert.ok(diff / raw.frames.length < 4, `mean pixel difference ${diff / raw.frames.length} (JPEG only)`);
    let audioDiff = 0;
    for (let j = 0; j < raw.audio.length; j++)
      audioDiff = Math.max(audioDiff, Math.abs(raw.audio[j] - clip.audio[j]));
    assert.ok(audioDiff < 1e-3, `largest audio difference ${audioDiff} (int16 rounding only)`);
  });

  it("augments from the crop's region of each stored frame exactly as from whole frames", async () => {
    const augment = { outHeight: 32, outWidth: 32 };
    const opts = { dir: shards, seed: 3, frames: 8, clipsPerRow: 2 };
    const examples = await collect(parquetExamples({ ...opts, augment }));
    const clips = await collect(parquetClips(opts));
    assert.equal(examples.length, 8);
    for (const [i, e] of examples.entries()) {
      const whole = augmentClip(clips[i], { ...augment, seed: 3 });
      assert.equal(e.id, whole.id);
      assert.deepEqual(e.video, whole.video, `example ${i}`);
      assert.deepEqual(e.audio, whole.audio);
    }
  });

  it("produces augmented Examples with the stored token ids of the nearest captions", async () => {
    const examples: Example[] = await collect(
      parquetExamples({ dir: shards, seed: 2, frames: 8, augment: { outHeight: 32, outWidth: 32 } }),
    );
    assert.equal(examples.length, 4);
    const clips = await collect(parquetClips({ dir: shards, seed: 2, frames: 8 }));
    for (const [i, e] of examples.entries()) {
      assert.deepEqual(e.videoShape, [8, 32, 32, 3]);
      assert.ok(e.video.every((v) => v >= -1 && v <= 1));
      const ref = clips[i].ref;
      assert.equal(e.id, ref.id);
      const want = captionPositives(ref.captions, ref.start, ref.end, vocab);
      assert.deepEqual(Array.from(e.textIds), Array.from(want.textIds), "stored ids = tokenizing now");
      assert.deepEqual(Array.from(e.textMask), Array.from(want.textMask));
    }
  });
});
