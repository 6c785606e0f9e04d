import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  clipUnit,
  colourAugment,
  defaultColourAugment,
  drawColourFactors,
  toSymmetricRange,
} from "../../operators/color.js";

function close(actual: ArrayLike<number>, expected: number[], eps = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) < eps, `index ${i}: ${actual[i]} != ${expected[i]}`);
  }
}

const px = (...v: number[]) => new Float32Array(v);

describe("colour ops, hand-computed pixels (tf.image semantics)", () => {
  it("brightness adds delta without clipping", () => {
    close(adjustBrightness(px(0.5, 0.95, 0), 0.1), [0.6, 1.05, 0.1]);
  });

  it("saturation scales HSV s, keeps h and v", () => {
    // (0.8, 0.4, 0.2): v = 0.8, s = 0.75; s' = 0.375 -> min = v (1 - s') = 0.5, mid keeps its hue fraction.
    close(adjustSaturation(px(0.8, 0.4, 0.2), 0.5), [0.8, 0.6, 0.5]);
    // s * 2 = 1.5 clamps to 1: min goes to 0, mid = 0.8 - 0.4 * 4/3.
    close(adjustSaturation(px(0.8, 0.4, 0.2), 2), [0.8, 0.8 - 0.4 * (4 / 3), 0]);
    close(adjustSaturation(px(0.3, 0.3, 0.3), 1.4), [0.3, 0.3, 0.3]); // grey stays grey
    close(adjustSaturation(px(-0.1, -0.05, -0.2), 1.2), [-0.05, -0.05, -0.05]); // TF: v <= 0 -> s = 0 -> (v, v, v)
  });

  it("contrast works around the per-frame, per-channel mean", () => {
    // Frame 0 means (0.4, 0.6, 0.8); frame 1 is constant, so it does not move.
    const clip = px(0.2, 0.4, 0.6, 0.6, 0.8, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5);
    close(adjustContrast(clip, 2, 2), [0, 0.2, 0.4, 0.8, 1.0, 1.2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });

  it("hue rotates by turns, keeping min and max", () => {
    close(adjustHue(px(1, 0, 0), 1 / 3), [0, 1, 0]);
    // (0.8, 0.4, 0.2) has hue 20 deg; +36 deg -> 56 deg: c = 0.6, x = 0.6 * (1 - |56/60 - 1|) = 0.56, m = 0.2.
    close(adjustHue(px(0.8, 0.4, 0.2), 0.1), [0.8, 0.76, 0.2]);
    close(adjustHue(px(1, 0, 0), -0.2), [0.8, 0, 1]); // 288 deg wraps
    close(adjustHue(px(0.4, 0.4, 0.4), 0.2), [0.4, 0.4, 0.4]);
  });

  it("clip and [-1, 1] scaling", () => {
    close(clipUnit(px(-0.2, 0.5, 1.3)), [0, 0.5, 1]);
    close(toSymmetricRange(px(0, 0.5, 1, 0.25)), [-1, 0, 1, -0.5]);
  });

  it("a known pixel through the whole chain in the reference order", () => {
    // One-pixel frame: contrast is a no-op (the pixel is its own mean).
    // brightness +0.1: (0.9, 0.5, 0.3); saturation x0.5: v 0.9, s 2/3 -> k 0.5: (0.9, 0.7, 0.6);
    // hue +1/3 turn: (0.6, 0.9, 0.7); clip; scale: (0.2, 0.8, 0.4).
    const out = colourAugment(px(0.8, 0.4, 0.2), 1, {
      brightness: 0.1,
      saturation: 0.5,
      contrast: 1.3,
      hue: 1 / 3,
    });
    close(out, [0.2, 0.8, 0.4]);
  });

  it("the fused colourAugment equals the single ops applied in order", () => {
    const rng = randomFor(1, 0, 0, "pixels");
    const frames = 3;
    const data = new Float32Array(frames * 17 * 3).map(() => rng.next());
    for (let seed = 0; seed < 20; seed++) {
      const factors = drawColourFactors(randomFor(seed, 0, 0, "colour"), {
        ...defaultColourAugment,
        probability: 1,
      })!;
      const expected = toSymmetricRange(
        clipUnit(
          adjustHue(
            adjustContrast(
              adjustSaturation(adjustBrightness(data.slice(), factors.brightness), factors.saturation),
              frames,
              factors.contrast,
            ),
            factors.hue,
          ),
        ),
      );
      close(colourAugment(data.slice(), frames, factors), [...expected], 1e-5);
    }
  });

  it("draws factors in the reference ranges, applied with p = 0.8", () => {
    let applied = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const f = drawColourFactors(randomFor(7, 0, i, "colour"));
      if (!f) continue;
      applied += 1;
      assert.ok(Math.abs(f.brightness) <= 32 / 255);
      assert.ok(f.saturation >= 0.6 && f.saturation < 1.4);
      assert.ok(f.contrast >= 0.6 && f.contrast < 1.4);
      assert.ok(Math.abs(f.hue) <= 0.2);
    }
    assert.ok(Math.abs(applied / n - 0.8) < 0.03, `applied ${applied / n}`);
  });

  it("without factors only scales to [-1, 1]", () => {
    close(colourAugment(px(0, 1, 0.5), 1, undefined), [-1, 1, 0]);
  });
});
