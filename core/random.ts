/**
 * Seeded randomness keyed by what it is for, never by when it is drawn.
 *
 * Every random choice for sample `index` of `epoch` comes from `randomFor(seed, epoch, index, purpose)`: a small
 * generator whose state is a hash of those four keys. Results therefore do not depend on concurrency, arrival
 * order or restarts, and a resumed run draws exactly what an uninterrupted one would.
 */

/** A deterministic stream of numbers. */
export interface Random {
  /** 32 uniformly random bits as an unsigned integer (for hot loops that build their own draws). */
  nextUint32(): number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** True with probability p. */
  bernoulli(p: number): boolean;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** A new Random derived from this one's key and a sub-purpose. */
  fork(purpose: string): Random;
}

/** murmur3's 32-bit finaliser: a strong avalanche of one word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds any key (numbers and strings) into a 32-bit hash, seeded by `h`. */
function hashKey(h: number, key: number | string): number {
  if (typeof key === "number") {
    // Split doubles into two 32-bit halves so large or fractional keys still hash fully.
    const lo = key >>> 0;
    const hi = Math.floor(key / 4294967296) >>> 0;
    h = fmix32(h ^ Math.imul(lo, 0xcc9e2d51));
    return fmix32((h + 0x9e3779b9) ^ Math.imul(hi, 0x1b873593));
  }
  for (let i = 0; i < key.length; i++) h = fmix32((h ^ key.charCodeAt(i)) + 0x9e3779b9);
  return fmix32(h ^ key.length);
}

/** sfc32: a fast small generator with 128 bits of state (PractRand-clean). */
class Sfc32 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  constructor(
    private readonly key: number,
    seedWords: [number, number, number, number],
  ) {
    [this.a, this.b, this.c, this.d] = seedWords;
    for (let i = 0; i < 12; i++) this.nextUint32(); // warm up
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    // 53 random bits for a full-precision double in [0, 1).
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  int(n: number): number {
    if (!(n > 0)) throw new RangeError(`Random.int needs n > 0, got ${n}`);
    return Math.floor(this.next() * n);
  }

  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  fork(purpose: string): Random {
    return fromKey(hashKey(this.key, purpose));
  }
}

function fromKey(key: number): Random {
  const words: [number, number, number, number] = [
    hashKey(key, 1),
    hashKey(key, 2),
    hashKey(key, 3),
    hashKey(key, 4),
  ];
  return new Sfc32(key, words);
}

/**
 * sfc32 started from four state words (and warmed up like every generator here). For a native kernel that runs
 * the same generator (native/audio_noise.c): given the same words, both draw the same stream.
 */
export function randomFromWords(words: [number, number, number, number]): Random {
  const key = hashKey(hashKey(hashKey(hashKey(0x3f0d5, words[0]), words[1]), words[2]), words[3]);
  return new Sfc32(key, [words[0] | 0, words[1] | 0, words[2] | 0, words[3] | 0]);
}

/** The generator for one purpose of one sample: the only way randomness enters the pipeline. */
export function randomFor(seed: number, epoch: number, index: number, purpose: string): Random {
  let key = hashKey(0x5eed, seed);
  key = hashKey(key, epoch);
  key = hashKey(key, index);
  key = hashKey(key, purpose);
  return fromKey(key);
}

/** A generator for run-level choices that are not tied to one sample (e.g. shuffling a shard list). */
export function randomForRun(seed: number, purpose: string): Random {
  return randomFor(seed, -1, -1, purpose);
}
