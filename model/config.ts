/**
 * Model configuration: Transformer sizes, input geometry, and the named presets of the paper (BBS, MBS, LBS,
 * MA-Medium) plus a `tiny` preset for CPU tests and the demo. Everything here is plain data; the parameter count
 * and FLOPs (model/info.ts) and the network (model/vatt.ts) are both derived from it, so they cannot drift.
 */

/** One Transformer stack. The head dimension is hidden / heads. */
export interface TransformerSize {
  name: string;
  layers: number;
  hidden: number;
  mlp: number;
  heads: number;
}

export const SIZES = {
  tiny: { name: "tiny", layers: 2, hidden: 64, mlp: 256, heads: 4 },
  small: { name: "small", layers: 6, hidden: 512, mlp: 2048, heads: 8 },
  base: { name: "base", layers: 12, hidden: 768, mlp: 3072, heads: 12 },
  medium: { name: "medium", layers: 12, hidden: 1024, mlp: 4096, heads: 16 },
  large: { name: "large", layers: 24, hidden: 1024, mlp: 4096, heads: 16 },
} as const satisfies Record<string, TransformerSize>;

export type SizeName = keyof typeof SIZES;

/** Video clip geometry and its voxel (patch) size. Frames, height and width must divide by the patch. */
export interface VideoGeometry {
  frames: number;
  height: number;
  width: number;
  patchFrames: number;
  patchHeight: number;
  patchWidth: number;
}

/** Raw waveform length and the window of samples that makes one token. */
export interface AudioGeometry {
  samples: number;
  patch: number;
}

export interface TextConfig {
  /** Word ids are in [0, vocabSize); 0 is <pad>. */
  vocabSize: number;
  /** Width of the word embedding table (reference: 300-d word2vec). */
  embedDim: number;
  /** Words per caption (padded or clipped). */
  maxWords: number;
  /** T5 relative position bias. */
  relativeBuckets: number;
  relativeMaxDistance: number;
}

export interface ModelConfig {
  preset: string;
  video: TransformerSize;
  audio: TransformerSize;
  text: TransformerSize;
  /** VATT-MA: one backbone (of size `video`) shared by all modalities; `audio`/`text` sizes are then ignored. */
  shared: boolean;
  videoGeometry: VideoGeometry;
  audioGeometry: AudioGeometry;
  textConfig: TextConfig;
  /** Common spaces: S_va (video-audio) and S_vt (video-text). */
  vaDim: number;
  vtDim: number;
  dropout: number;
  /** DropToken rate for video and audio during training. */
  dropTokenRate: number;
  layerNormEps: number;
  batchNormMomentum: number;
  batchNormEps: number;
}

export const PAPER_VIDEO: VideoGeometry = {
  frames: 32,
  height: 224,
  width: 224,
  patchFrames: 4,
  patchHeight: 16,
  patchWidth: 16,
};
export const PAPER_AUDIO: AudioGeometry = { samples: 153_600, patch: 128 };
export const PAPER_TEXT: TextConfig = {
  vocabSize: 2 ** 16,
  embedDim: 300,
  maxWords: 16,
  relativeBuckets: 32,
  relativeMaxDistance: 64,
};

function paperConfig(
  preset: string,
  video: SizeName,
  audio: SizeName,
  text: SizeName,
  shared = false,
): ModelConfig {
  return {
    preset,
    video: SIZES[video],
    audio: SIZES[audio],
    text: SIZES[text],
    shared,
    videoGeometry: PAPER_VIDEO,
    audioGeometry: PAPER_AUDIO,
    textConfig: PAPER_TEXT,
    vaDim: 512,
    vtDim: 256,
    dropout: 0.1,
    dropTokenRate: 0.5,
    layerNormEps: 1e-6,
    batchNormMomentum: 0.9,
    batchNormEps: 1e-5,
  };
}

/** Tiny: trains in minutes on 2 CPU cores. 8 frames of 64x64 and 8192 audio samples by default. */
function tinyConfig(): ModelConfig {
  return {
    ...paperConfig("tiny", "tiny", "tiny", "tiny"),
    videoGeometry: { frames: 8, height: 64, width: 64, patchFrames: 4, patchHeight: 16, patchWidth: 16 },
    audioGeometry: { samples: 8192, patch: 128 },
    textConfig: { ...PAPER_TEXT, embedDim: 64 },
    vaDim: 64,
    vtDim: 32,
  };
}

const PRESETS: Record<string, () => ModelConfig> = {
  tiny: tinyConfig,
  // Paper section 4.3: text is always Small, audio Base, video Base/Medium/Large.
  BBS: () => paperConfig("BBS", "base", "base", "small"),
  MBS: () => paperConfig("MBS", "medium", "base", "small"),
  LBS: () => paperConfig("LBS", "large", "base", "small"),
  "MA-Medium": () => paperConfig("MA-Medium", "medium", "medium", "medium", true),
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** Looks a preset up by name, case-insensitively; undefined when unknown. */
export function presetConfig(name: string): ModelConfig | undefined {
  const key = PRESET_NAMES.find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : PRESETS[key]();
}

/** Overrides applied on top of a preset (the demo picks its own input geometry). */
export interface ConfigOverrides {
  videoGeometry?: Partial<VideoGeometry>;
  audioGeometry?: Partial<AudioGeometry>;
  textConfig?: Partial<TextConfig>;
  vaDim?: number;
  vtDim?: number;
  dropout?: number;
  dropTokenRate?: number;
}

export function withOverrides(config: ModelConfig, o: ConfigOverrides): ModelConfig {
  const out: ModelConfig = {
    ...config,
    videoGeometry: { ...config.videoGeometry, ...o.videoGeometry },
    audioGeometry: { ...config.audioGeometry, ...o.audioGeometry },
    textConfig: { ...config.textConfig, ...o.textConfig },
    vaDim: o.vaDim ?? config.vaDim,
    vtDim: o.vtDim ?? config.vtDim,
    dropout: o.dropout ?? config.dropout,
    dropTokenRate: o.dropTokenRate ?? config.dropTokenRate,
  };
  validateConfig(out);
  return out;
}

/** Token grid of the video: (frames/pt, height/ph, width/pw). */
export function videoGrid(g: VideoGeometry): [number, number, number] {
  return [g.frames / g.patchFrames, g.height / g.patchHeight, g.width / g.patchWidth];
}

export function videoTokens(g: VideoGeometry): number {
  const [t, h, w] = videoGrid(g);
  return t * h * w;
}

export function audioTokens(g: AudioGeometry): number {
  return g.samples / g.patch;
}

/** Values in one video voxel: pt * ph * pw * 3 (RGB). */
export function voxelSize(g: VideoGeometry): number {
  return g.patchFrames * g.patchHeight * g.patchWidth * 3;
}

/** Tokens kept by DropToken: int((1 - rate) * n), as the reference does. */
export function keptTokens(n: number, rate: number): number {
  return Math.floor((1 - rate) * n);
}

/** Throws a RangeError naming the first inconsistent field. */
export function validateConfig(c: ModelConfig): void {
  const g = c.videoGeometry;
  const pairs: [string, number, number][] = [
    ["video frames", g.frames, g.patchFrames],
    ["video height", g.height, g.patchHeight],
    ["video width", g.width, g.patchWidth],
    ["audio samples", c.audioGeometry.samples, c.audioGeometry.patch],
  ];
  for (const [what, n, p] of pairs) {
    if (!(Number.isInteger(n) && Number.isInteger(p) && p > 0 && n > 0 && n % p === 0)) {
      throw new RangeError(`${what} (${n}) must be a positive multiple of its patch size (${p})`);
    }
  }
  for (const s of [c.video, c.audio, c.text]) {
    if (s.hidden % s.heads !== 0)
      throw new RangeError(`${s.name}: hidden ${s.hidden} must divide by heads ${s.heads}`);
  }
  if (!(c.dropTokenRate >= 0 && c.dropTokenRate < 1)) {
    throw new RangeError(`DropToken rate must be in [0, 1), got ${c.dropTokenRate}`);
  }
}
