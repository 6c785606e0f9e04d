/**
 * Audio operators on float32 mono clips in [-1, 1]. Decoding (resampling to 48 kHz, downmixing to mono, looping a
 * short clip in step with its video) lives in decode.ts; these run afterwards.
 */
import type { Random } from "../pipeline/random.js";

/** Largest |x|. */
export function peakAbs(audio: Float32Array): number {
  let peak = 0;
  for (let i = 0; i < audio.length; i++) {
    const a = Math.abs(audio[i]);
    if (a > peak) peak = a;
  }
  return peak;
}

/**
 * The reference's pretraining noise: x + N(0, sigma^2) with sigma = relative * max|x| (reference: 0.01), clipped to
 * [-1, 1]. Silent clips stay silent (sigma 0). Returns a new array.
 */
export function addGaussianNoise(audio: Float32Array, rng: Random, relative = 0.01): Float32Array {
  const sigma = relative * peakAbs(audio);
  const out = new Float32Array(audio.length);
  if (sigma === 0) {
    out.set(audio);
    return out;
  }
  for (let i = 0; i < audio.length; i++) {
    const v = audio[i] + sigma * rng.normal();
    out[i] = v > 1 ? 1 : v < -1 ? -1 : v;
  }
  return out;
}

/** Clamps to [-1, 1] in place (decoders may overshoot slightly after resampling). */
export function clipAudio(audio: Float32Array): Float32Array {
  for (let i = 0; i < audio.length; i++) {
    const v = audio[i];
    audio[i] = v > 1 ? 1 : v < -1 ? -1 : v;
  }
  return audio;
}
