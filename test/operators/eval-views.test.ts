import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClipRef } from "../../core/records.js";
import { threeCropBoxes } from "../../operators/crop.js";
import { dmvrWindowOffsets, temporalWindows } from "../../operators/eval-views.js";

/** DMVR as TensorFlow runs it: tf.linspace in float32 (ends exact, middle start + k * delta), cast to int32. */
function dmvrAsTf(length: number, frames: number, stride: number, count: number): number[] {
  // One window: sample_sequence's max(0, (L - frames * stride) // 2), Python's floor division.
  if (count === 1) return [Math.max(0, Math.floor((length - frames * stride) / 2))];
  const max = Math.max(0, length - frames * stride);
  const delta = Math.fround(max / (count - 1));
  return Array.from({ length: count }, (_, k) =>
    k === 0 ? 0 : k === count - 1 ? max : Math.trunc(Math.fround(Math.fround(k) * delta)),
  );
}

/** tf.math.round (half to even), written independently of the code under test. */
function tfRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const ref: ClipRef = {
  source: "test",
  id: "v",
  path: "v.mp4",
  start: 0,
  end: 10,
  index: 0,
  epoch: 0,
  captions: [],
  labels: [],
};

describe("evaluation windows (DMVR)", () => {
  it("window offsets follow linspace(0, max(0, L - frames * stride), n) cast to int", () => {
    for (let length = 0; length <= 400; length += 7) {
      for (const count of [1, 2, 3, 4, 5, 10]) {
        for (const stride of [1, 2]) {
          assert.deepEqual(
            dmvrWindowOffsets(length, 32, stride, count),
            dmvrAsTf(length, 32, stride, count),
            `L ${length}, n ${count}, stride ${stride}`,
          );
        }
      }
    }
    assert.deepEqual(dmvrWindowOffsets(100, 32, 1, 4), [0, 22, 45, 68]);
    assert.deepEqual(dmvrWindowOffsets(101, 32, 1, 1), [34]); // (101 - 32) // 2
    assert.deepEqual(dmvrWindowOffsets(20, 32, 2, 4), [0, 0, 0, 0]); // shorter than a window: loops from 0
  });

  it("temporalWindows with a frame rate lands on DMVR's frames", () => {
    const fps = 10;
    for (const end of [3.2, 5, 7.7, 10, 31.4]) {
      for (const count of [1, 3, 4]) {
        const starts = temporalWindows({ ...ref, end }, count, 3.2, undefined, fps).map((w) => w.start);
        const frames = dmvrWindowOffsets(Math.floor(end * fps + 1e-9), 32, 1, count);
        assert.deepEqual(
          starts.map((s) => Math.round(s * fps)),
          frames,
        );
        for (const [k, s] of starts.entries()) assert.ok(Math.abs(s * fps - frames[k]) < 1e-9);
        // Without the frame rate: the same formula in continuous time, within one frame.
        const continuous = temporalWindows({ ...ref, end }, count, 3.2).map((w) => w.start);
        for (const [k, s] of continuous.entries())
          assert.ok(s * fps - frames[k] >= -1e-9 && s * fps - frames[k] < 1);
      }
    }
  });
});

describe("3-crop views (reference multi_crop_image)", () => {
  it("crops at the start, centre and end of the long side, centre rounded half to even", () => {
    for (const side of [224, 225, 320]) {
      for (let long = side; long <= side + 40; long++) {
        const expected = [0, tfRound(long / 2 - Math.floor(side / 2)), long - side];
        const landscape = threeCropBoxes(long, side);
        assert.deepEqual(
          landscape.map((b) => b.x),
          expected,
          `${long}x${side}`,
        );
        assert.ok(landscape.every((b) => b.y === 0 && b.width === side && b.height === side));
        const portrait = threeCropBoxes(side, long);
        assert.deepEqual(
          portrait.map((b) => b.y),
          expected,
        );
      }
    }
    // 343 x 320: 171.5 - 160 = 11.5 rounds to 12 (the floor of half the room would give 11).
    assert.equal(threeCropBoxes(343, 320)[1].x, 12);
  });
});
