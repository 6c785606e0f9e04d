// biome-ignore-all lint/complexity/useMathMinMax: per-pixel hot loops, where a compare is cheaper than a call
/**
 * Audio operators on float32 mono clips in [-1, 1]. Decoding (resampling to 48 kHz, downmixing to mono, looping a
 * short clip in step with its video) lives in decode.ts; these run afterwards.
 */
import { uninitialisedFloat32 } from "../core/buffers.js";
import { type Random, randomFromWords } from "../core/random.js";
import { addGaussianNoiseNative, useNativeKernels, type ZigguratTables } from "../native/kernels.js";

/** Largest |x|. */
export function peakAbs(audio: Float32Array): number {
  let peak = 0;
  for (let i = 0; i < audio.length; i++) {
    const a = Math.abs(audio[i]);
    if (a > peak) peak = a;
  }
  return peak;
}

/*
 * Standard normals by the ziggurat method (Marsaglia & Tsang 2000, 128 layers) from an sfc32 stream seeded by
 * four words of the caller's Random: ~1 32-bit draw and a table compare per sample in 98.8% of cases, instead of a
 * log, a square root and a sine or cosine per sample (Box-Muller). The layer index takes the low 7 bits and the
 * signed magnitude the high 25, so the two are independent (Doornik 2005's remark on the original).
 */
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_M = 16777216; // 2^24: |magnitude| < 2^24
const zigK = new Int32Array(128);
const zigW = new Float64Array(128);
const zigF = new Float64Array(128);
{
  let dn = ZIG_R;
  let tn = dn;
  const q = ZIG_V / Math.exp(-0.5 * dn * dn);
  zigK[0] = Math.floor((dn / q) * ZIG_M);
  zigK[1] = 0;
  zigW[0] = q / ZIG_M;
  zigW[127] = dn / ZIG_M;
  zigF[0] = 1;
  zigF[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(ZIG_V / dn + Math.exp(-0.5 * dn * dn)));
    zigK[i + 1] = Math.floor((dn / tn) * ZIG_M);
    tn = dn;
    zigF[i] = Math.exp(-0.5 * dn * dn);
    zigW[i] = dn / ZIG_M;
  }
}

/** Standard normal draws by the ziggurat method, from the 32-bit words of a seeded generator. */
class NormalStream {
  constructor(private readonly rng: Random) {}

  int32(): number {
    return this.rng.nextUint32() | 0;
  }

  /** Uniform in (0, 1). */
  open01(): number {
    return ((this.int32() >>> 0) + 0.5) / 4294967296;
  }

  normal(): number {
    const u = this.int32();
    const i = u & 127;
    const m = u >> 7;
    if ((m < 0 ? -m : m) < zigK[i]) return m * zigW[i];
    return this.tail(m, i);
  }

  /** The ziggurat's slow path: a wedge or the base strip (tail beyond R). */
  private tail(m: number, i: number): number {
    for (;;) {
      if (i === 0) {
        let x: number;
        let y: number;
        do {
          x = -Math.log(this.open01()) / ZIG_R;
          y = -Math.log(this.open01());
        } while (y + y < x * x);
        return m > 0 ? ZIG_R + x : -ZIG_R - x;
      }
      const x = m * zigW[i];
      if (zigF[i] + this.open01() * (zigF[i - 1] - zigF[i]) < Math.exp(-0.5 * x * x)) return x;
      const u = this.int32();
      i = u & 127;
      m = u >> 7;
      if ((m < 0 ? -m : m) < zigK[i]) return m * zigW[i];
    }
  }
}

/** The tables, for the native kernel (and its test). */
export const zigguratTables: ZigguratTables = { k: zigK, w: zigW, f: zigF, r: ZIG_R };

/**
 * The reference's pretraining noise: x + N(0, sigma^2) with sigma = relative * max|x| (reference: 0.01), clipped to
 * [-1, 1]. Silent clips stay silent (sigma 0). Returns a new array. The normals come from a ziggurat over an sfc32
 * stream seeded by four words of `rng` (same rng state, same noise), in C when the native kernels are built
 * (pipeline/native.ts; ~0.3 ms instead of ~2.8 ms for a 153,600-sample clip) and in JavaScript otherwise.
 */
export function addGaussianNoise(audio: Float32Array, rng: Random, relative = 0.01): Float32Array {
  const sigma = relative * peakAbs(audio);
  const words: [number, number, number, number] = [
    rng.nextUint32(),
    rng.nextUint32(),
    rng.nextUint32(),
    rng.nextUint32(),
  ];
  if (sigma === 0) return Float32Array.from(audio);
  if (useNativeKernels) {
    return addGaussianNoiseNative(
      audio,
      uninitialisedFloat32(audio.length),
      sigma,
      Uint32Array.from(words),
      zigguratTables,
    );
  }
  return addGaussianNoiseScalar(audio, sigma, words);
}

/** The JavaScript build of the noise loop (the reference; `VATT_NATIVE=0` runs it). */
export function addGaussianNoiseScalar(
  audio: Float32Array,
  sigma: number,
  words: [number, number, number, number],
): Float32Array {
  const out = new Float32Array(audio.length);
  const normals = new NormalStream(randomFromWords(words));
  for (let i = 0; i < audio.length; i++) {
    const v = audio[i] + sigma * normals.normal();
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
