import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import { addGaussianNoise, clipAudio, peakAbs } from "../../operators/audio.js";

describe("audio operators", () => {
  const tone = new Float32Array(48_000).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 48_000));

  it("noise has sigma = 0.01 * max|x| and is seeded", () => {
    const noisy = addGaussianNoise(tone, randomFor(1, 0, 5, "audio-noise"));
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < tone.length; i++) {
      const d = noisy[i] - tone[i];
      sum += d;
      sq += d * d;
    }
    const mean = sum / tone.length;
    const sd = Math.sqrt(sq / tone.length - mean * mean);
    assert.ok(Math.abs(sd - 0.005) < 0.0003, `sd ${sd}`);
    assert.ok(Math.abs(mean) < 0.0003);
    assert.deepEqual(addGaussianNoise(tone, randomFor(1, 0, 5, "audio-noise")), noisy);
    assert.notDeepEqual(addGaussianNoise(tone, randomFor(1, 0, 6, "audio-noise")), noisy);
  });

  it("silence stays silent and the result stays in [-1, 1]", () => {
    assert.ok(addGaussianNoise(new Float32Array(100), randomFor(0, 0, 0, "n")).every((v) => v === 0));
    const loud = new Float32Array([1, -1, 1, -1]);
    assert.ok(peakAbs(addGaussianNoise(loud, randomFor(0, 0, 0, "n"), 0.5)) <= 1);
    assert.deepEqual([...clipAudio(new Float32Array([1.5, -2, 0.25]))], [1, -1, 0.25]);
  });
});
