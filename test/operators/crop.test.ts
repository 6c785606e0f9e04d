import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import { colourAugment, drawColourFactors } from "../../operators/color.js";
import {
  centreCropBox,
  cropResizeColour,
  cropResizeFrames,
  defaultInceptionCrop,
  inceptionCropBox,
  threeCropBoxes,
  vggCropBox,
} from "../../operators/crop.js";

describe("crop boxes", () => {
  it("inception crops stay in the frame with area in [0.08, 1] and aspect in [0.5, 2] over many seeds", () => {
    const [w, h] = [341, 256];
    let minArea = 1;
    let maxArea = 0;
    let fallbacks = 0;
    for (let i = 0; i < 3000; i++) {
      const box = inceptionCropBox(w, h, randomFor(3, 0, i, "crop"));
      assert.ok(
        box.x >= 0 && box.y >= 0 && box.x + box.width <= w && box.y + box.height <= h,
        JSON.stringify(box),
      );
      const area = (box.width * box.height) / (w * h);
      const aspect = box.width / box.height;
      if (box.width === w && box.height === h) fallbacks += 1;
      minArea = Math.min(minArea, area);
      maxArea = Math.max(maxArea, area);
      // Rounding to whole pixels moves area and aspect by a little.
      assert.ok(area >= 0.075 && area <= 1, `area ${area}`);
      assert.ok(aspect >= 0.5 * 0.95 && aspect <= 2 * 1.05, `aspect ${aspect}`);
    }
    assert.ok(minArea < 0.1 && maxArea > 0.7, `areas span [${minArea}, ${maxArea}]`);
    assert.ok(fallbacks < 100, `${fallbacks} fallbacks`);
  });

  it("falls back to a centred crop clamped to the aspect range", () => {
    const box = inceptionCropBox(1000, 10, randomFor(0, 0, 0, "crop"), {
      ...defaultInceptionCrop,
      attempts: 0,
    });
    assert.deepEqual(box, { x: 490, y: 0, width: 20, height: 10 });
    const whole = inceptionCropBox(300, 200, randomFor(0, 0, 0, "crop"), {
      ...defaultInceptionCrop,
      attempts: 0,
    });
    assert.deepEqual(whole, { x: 0, y: 0, width: 300, height: 200 });
  });

  it("vgg crops are squares whose scale follows the jitter", () => {
    for (let i = 0; i < 500; i++) {
      const box = vggCropBox(455, 256, 224, randomFor(1, 0, i, "crop"));
      assert.equal(box.width, box.height);
      // short side 256 resized to 256 * [0.8, 1.2] (min 224), then 224 taken: side = 224 * 256 / resized.
      assert.ok(box.width >= Math.floor((224 * 256) / (256 * 1.2)) && box.width <= 256, `side ${box.width}`);
      assert.ok(box.x + box.width <= 455 && box.y + box.height <= 256);
    }
  });

  it("centre crop and 3-crop positions", () => {
    assert.deepEqual(centreCropBox(455, 256, 224, 224), { x: 99, y: 0, width: 256, height: 256 });
    assert.deepEqual(centreCropBox(455, 256, 224, 224, 256), { x: 115, y: 16, width: 224, height: 224 });
    assert.deepEqual(
      threeCropBoxes(400, 100).map((b) => [b.x, b.y, b.width]),
      [
        [0, 0, 100],
        [150, 0, 100],
        [300, 0, 100],
      ],
    );
    assert.deepEqual(
      threeCropBoxes(100, 301).map((b) => [b.x, b.y, b.height]),
      [
        [0, 0, 100],
        [0, 100, 100],
        [0, 201, 100],
      ],
    );
  });
});

describe("cropResizeFrames", () => {
  // A 2-frame 4x3 clip whose red channel is the column, green the row, blue the frame.
  const [t, h, w] = [2, 3, 4];
  const frames = new Uint8Array(t * h * w * 3);
  for (let f = 0; f < t; f++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) frames.set([x * 50, y * 100, f * 200], ((f * h + y) * w + x) * 3);
  const at = (out: Float32Array, ow: number, oh: number, f: number, y: number, x: number) =>
    Array.from(out.subarray(((f * oh + y) * ow + x) * 3, ((f * oh + y) * ow + x) * 3 + 3)).map((v) =>
      Math.round(v * 255),
    );

  it("identity box and size copies pixels scaled to [0, 1]", () => {
    const out = cropResizeFrames(frames, t, h, w, { x: 0, y: 0, width: w, height: h }, h, w);
    assert.equal(out.length, frames.length);
    for (let i = 0; i < frames.length; i++) assert.ok(Math.abs(out[i] - frames[i] / 255) < 1e-6);
  });

  it("flip mirrors every row of every frame", () => {
    const out = cropResizeFrames(frames, t, h, w, { x: 0, y: 0, width: w, height: h }, h, w, true);
    assert.deepEqual(at(out, w, h, 1, 2, 0), [150, 200, 200]);
    assert.deepEqual(at(out, w, h, 0, 1, 3), [0, 100, 0]);
  });

  it("crops the same box in every frame and resizes bilinearly with half-pixel centres", () => {
    // Box columns 1..2, rows 0..1 -> 1x1: the centre of the box, the mean of its four pixels.
    const out = cropResizeFrames(frames, t, h, w, { x: 1, y: 0, width: 2, height: 2 }, 1, 1);
    assert.deepEqual(at(out, 1, 1, 0, 0, 0), [75, 50, 0]);
    assert.deepEqual(at(out, 1, 1, 1, 0, 0), [75, 50, 200]);
    // Upscale 2 columns to 4: positions -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    const up = cropResizeFrames(frames, t, h, w, { x: 1, y: 0, width: 2, height: 1 }, 1, 4);
    const reds = [0, 1, 2, 3].map((x) => up[x * 3] * 255);
    for (const [i, v] of [50, 62.5, 87.5, 100].entries())
      assert.ok(Math.abs(reds[i] - v) < 1e-3, `${reds[i]} != ${v}`);
  });

  it("rejects a box outside the frame", () => {
    assert.throws(
      () => cropResizeFrames(frames, t, h, w, { x: 2, y: 0, width: 3, height: 1 }, 1, 1),
      /does not fit/,
    );
  });
});

describe("cropResizeColour (the fused training kernel)", () => {
  // A 3-frame 37x23 clip of varied colours, grey and saturated pixels included.
  const [t, h, w] = [3, 23, 37];
  const rng = randomFor(2, 0, 0, "pixels");
  const frames = new Uint8Array(t * h * w * 3).map(() => Math.floor(rng.next() * 256));
  for (let i = 0; i < 60; i += 3) frames.fill(((i * 37) & 0xff) as number, i, i + 3); // a run of grey pixels
  const boxes = [
    { x: 0, y: 0, width: w, height: h },
    { x: 3, y: 2, width: 20, height: 9 },
    { x: 10, y: 5, width: 27, height: 18 },
  ];

  it("equals crop + resize + flip, then the colour step, then [-1, 1]", () => {
    for (let seed = 0; seed < 12; seed++) {
      const box = boxes[seed % boxes.length];
      const [oh, ow] = seed % 2 === 0 ? [16, 16] : [11, 30];
      const flip = seed % 4 < 2;
      const factors = drawColourFactors(randomFor(seed, 0, 0, "colour"));
      const expected = colourAugment(cropResizeFrames(frames, t, h, w, box, oh, ow, flip), t, factors, true);
      const fused = cropResizeColour(frames, t, h, w, box, oh, ow, flip, factors, true);
      assert.equal(fused.length, expected.length);
      for (let i = 0; i < expected.length; i++) {
        assert.ok(
          Math.abs(fused[i] - expected[i]) < 1e-5,
          `seed ${seed} index ${i}: ${fused[i]} != ${expected[i]}`,
        );
      }
    }
  });

  it("gives the same bytes every time", () => {
    const factors = { brightness: 0.1, saturation: 1.3, contrast: 0.7, hue: -0.15 };
    const a = cropResizeColour(frames, t, h, w, boxes[1], 16, 16, true, factors, true);
    const b = cropResizeColour(frames, t, h, w, boxes[1], 16, 16, true, factors, true);
    assert.deepEqual(a, b);
  });
});
