import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { multiHot } from "../../core/labels.js";
import type { ClipRef, DecodedClip } from "../../core/records.js";
import { applyAugmentation, augmentClip, drawAugmentation } from "../../operators/augment.js";
import { stackExamples } from "../../operators/batch.js";
import { centreCropView, temporalWindows, threeCropViews } from "../../operators/eval-views.js";

function fakeClip(
  index: number,
  opts: { width?: number; height?: number; labels?: number[]; padded?: number } = {},
) {
  const { width = 40, height = 30 } = opts;
  const numFrames = 4;
  const frames = new Uint8Array(numFrames * width * height * 3);
  for (let i = 0; i < frames.length; i++) frames[i] = (i * 7 + (i % 3) * 50) & 0xff;
  const ref: ClipRef = {
    source: "test",
    id: `c${index}`,
    path: "x.mp4",
    start: 0,
    end: 0.4,
    index,
    epoch: 0,
    captions: [],
    labels: opts.labels ?? [],
  };
  const audio = new Float32Array(100).map((_, i) => Math.sin(i / 5) * 0.5);
  const clip: DecodedClip = {
    ref,
    frames,
    numFrames,
    height,
    width,
    audio,
    sampleRate: 48_000,
    audioMask: 1,
    paddedFrames: opts.padded ?? 0,
  };
  return clip;
}

const small = { outHeight: 16, outWidth: 16 };

describe("augmentation", () => {
  it("draws are keyed by (seed, epoch, index) and independent of the order they are drawn in", () => {
    const a = drawAugmentation({ epoch: 1, index: 7 }, 320, 240, { seed: 3 });
    drawAugmentation({ epoch: 1, index: 8 }, 320, 240, { seed: 3 });
    assert.deepEqual(drawAugmentation({ epoch: 1, index: 7 }, 320, 240, { seed: 3 }), a);
    assert.notDeepEqual(drawAugmentation({ epoch: 2, index: 7 }, 320, 240, { seed: 3 }), a);
    let flips = 0;
    for (let i = 0; i < 2000; i++) if (drawAugmentation({ epoch: 0, index: i }, 320, 240).flip) flips += 1;
    assert.ok(Math.abs(flips / 2000 - 0.5) < 0.04, `flip rate ${flips / 2000}`);
  });

  it("produces [-1, 1] video of the output size, noisy audio, labels and the padded flag", () => {
    const ex = augmentClip(fakeClip(3, { labels: [1, 4], padded: 2 }), { ...small, numClasses: 6, seed: 1 });
    assert.deepEqual(ex.videoShape, [4, 16, 16, 3]);
    assert.equal(ex.video.length, 4 * 16 * 16 * 3);
    assert.ok(ex.video.every((v) => v >= -1 && v <= 1));
    assert.deepEqual([...ex.labels], [0, 1, 0, 0, 1, 0]);
    assert.equal(ex.padded, true);
    assert.notDeepEqual(ex.audio, fakeClip(3).audio);
    assert.ok(ex.audio.every((v, i) => Math.abs(v - fakeClip(3).audio[i]) < 0.05));
  });

  it("a flipped clip is the mirror image of the unflipped one", () => {
    const clip = fakeClip(0);
    const box = { x: 5, y: 3, width: 20, height: 20 };
    const plain = applyAugmentation(
      clip,
      { box, flip: false, colour: undefined },
      { ...small, audioNoise: 0 },
    );
    const flipped = applyAugmentation(
      clip,
      { box, flip: true, colour: undefined },
      { ...small, audioNoise: 0 },
    );
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 16; x++) {
        for (let c = 0; c < 3; c++) {
          assert.equal(flipped.video[(y * 16 + x) * 3 + c], plain.video[(y * 16 + 15 - x) * 3 + c]);
        }
      }
    }
    // No colour: exactly x / 255 * 2 - 1 of the bilinear sample (here the box maps 20 -> 16 pixels).
    assert.ok(plain.video.every((v) => v >= -1 && v <= 1));
  });

  it("multiHot rejects labels outside the class range", () => {
    assert.throws(() => multiHot([3], 3), /outside the 3 classes \[0, 3\)/);
  });
});

describe("evaluation views", () => {
  it("temporal windows are uniformly spaced over the ref", () => {
    const ref = fakeClip(0).ref;
    const starts = temporalWindows({ ...ref, start: 0, end: 10 }, 4, 3.2).map((w) => w.start);
    for (const [i, s] of starts.entries()) assert.ok(Math.abs(s - (i * 6.8) / 3) < 1e-9);
    assert.ok(Math.abs(temporalWindows({ ...ref, start: 0, end: 10 }, 1, 3.2)[0].start - 3.4) < 1e-9);
    assert.deepEqual(
      temporalWindows({ ...ref, start: 0, end: 2 }, 3, 3.2).map((w) => w.start),
      [0, 0, 0],
    );
  });

  it("centre and 3 crops have the output size; no noise, no colour", () => {
    const clip = fakeClip(0, { width: 40, height: 20 });
    const centre = centreCropView(clip, small);
    assert.deepEqual(centre.videoShape, [4, 16, 16, 3]);
    assert.deepEqual(centre.audio, clip.audio);
    const three = threeCropViews(clip, small);
    assert.equal(three.length, 3);
    assert.notDeepEqual(three[0].video, three[2].video);
  });
});

describe("batching", () => {
  it("stacks typed arrays and pads labels to the number of classes", () => {
    const a = augmentClip(fakeClip(0, { labels: [2] }), { ...small, numClasses: 4 });
    const b = augmentClip(fakeClip(1), { ...small }); // unlabelled: labels empty
    const batch = stackExamples([a, b], { numClasses: 4 });
    assert.equal(batch.size, 2);
    assert.deepEqual(batch.videoShape, [2, 4, 16, 16, 3]);
    assert.deepEqual(batch.video.subarray(a.video.length), b.video);
    assert.deepEqual([...batch.labels], [0, 0, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual([...batch.audioMask], [1, 1]);
    assert.equal(batch.audio.length, 200);
    assert.deepEqual(batch.ids, ["c0", "c1"]);
    const withText = { ...b, textIds: new Int32Array(16).fill(5), textMask: new Float32Array([1]) };
    const mixed = stackExamples([a, withText]);
    assert.equal(mixed.textIds.length, 2 * 16);
    assert.deepEqual([...mixed.textMask], [0, 1]);
  });

  it("refuses examples of different shapes with a message that names them", () => {
    const a = augmentClip(fakeClip(0), small);
    const b = augmentClip(fakeClip(1), { outHeight: 8, outWidth: 8 });
    assert.throws(() => stackExamples([a, b]), /example 1 \(test:c1\) has video 4x8x8x3/);
    // A video array shorter than its shape says would leave part of the (unzeroed) batch slot unwritten.
    const short = { ...augmentClip(fakeClip(1), small), video: new Float32Array(10) };
    assert.throws(() => stackExamples([a, short]), /example 1 \(test:c1\) has video 4x16x16x3 \(10 values\)/);
  });
});
