/** Shared fixtures of the model tests: the backend, a tiny config with a small vocabulary, synthetic batches. */

import { randomForRun } from "../../core/random.js";
import type { Batch } from "../../core/records.js";
import { selectBackend } from "../../model/backend.js";
import { type ModelConfig, presetConfig, withOverrides } from "../../model/config.js";

/** wasm is the project's default engine; tests run on it (override with VATT_TEST_BACKEND=cpu). */
export async function testBackend(): Promise<string> {
  const choice = process.env.VATT_TEST_BACKEND === "cpu" ? "cpu" : "wasm";
  return (await selectBackend(choice)).name;
}

/** The tiny preset with a small vocabulary, so tests stay fast. */
export function tinyTestConfig(overrides: Parameters<typeof withOverrides>[1] = {}): ModelConfig {
  const tiny = presetConfig("tiny");
  if (!tiny) throw new Error("tiny preset missing");
  return withOverrides(tiny, { textConfig: { vocabSize: 512 }, ...overrides });
}

/** A deterministic batch of B clips with K captions each; the last clip has no text, one caption is padding. */
export function syntheticBatch(c: ModelConfig, size: number, captions: number, seed = 1): Batch {
  const rng = randomForRun(seed, "test/batch");
  const g = c.videoGeometry;
  const videoShape: Batch["videoShape"] = [size, g.frames, g.height, g.width, 3];
  const video = new Float32Array(videoShape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < video.length; i++) video[i] = rng.uniform(-1, 1);
  const audio = new Float32Array(size * c.audioGeometry.samples);
  for (let i = 0; i < audio.length; i++) audio[i] = rng.uniform(-1, 1);
  const words = c.textConfig.maxWords;
  const textIds = new Int32Array(size * captions * words);
  const textMask = new Float32Array(size * captions);
  for (let b = 0; b < size; b++) {
    for (let k = 0; k < captions; k++) {
      const hasText = b < size - 1 && !(b === 0 && k === captions - 1 && captions > 1);
      textMask[b * captions + k] = hasText ? 1 : 0;
      if (!hasText) continue;
      const length = 3 + rng.int(words - 3);
      for (let w = 0; w < length; w++)
        textIds[(b * captions + k) * words + w] = 1 + rng.int(c.textConfig.vocabSize - 1);
    }
  }
  return {
    size,
    video,
    videoShape,
    audio,
    audioMask: new Float32Array(size).fill(1),
    textIds,
    textMask,
    labels: new Float32Array(0),
    sources: Array.from({ length: size }, () => "synthetic"),
    ids: Array.from({ length: size }, (_, i) => `clip-${i}`),
  };
}
