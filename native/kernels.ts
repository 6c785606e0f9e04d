/**
 * The native builds of the hot loops (native/*.c, compiled by `npm run build` with node-gyp against Node's own
 * headers; AVX-512, AVX2 and baseline versions chosen when the library loads): per clip, the training video kernel
 * (crop.ts `cropResizeColour`) and the audio noise (audio.ts `addGaussianNoise`); per training step, dropout masks,
 * the fused optimiser pass (model/fast/optim.ts) and the GELU / LayerNorm / RMS norm / dropout / attention kernels of
 * the wasm fast path (model/fast/index.ts). Each matches its JavaScript or tfjs reference within float rounding (test/native/kernels.test.ts,
 * test/model/fast/kernels.test.ts). A second library (native/jpeg, linked with the system's libjpeg-turbo) decodes a
 * region of a stored JPEG frame for the Parquet source (operators/parquet-cut.ts), which otherwise uses sharp.
 *
 * Where no C compiler (or no libjpeg headers) was available at install, a library is missing and the JavaScript /
 * tfjs / sharp paths run; `nativeKernelStatus` and `jpegDecoderStatus` say which and why, and `VATT_NATIVE=0` turns
 * both off.
 */
import { createRequire } from "node:module";
import type { ColourFactors, CropBox } from "../core/geometry.js";
import { fmix32 } from "../core/random.js";

export interface NativeKernels {
  cropResizeColour(
    frames: Uint8Array,
    numFrames: number,
    height: number,
    width: number,
    boxX: number,
    boxY: number,
    boxW: number,
    boxH: number,
    outH: number,
    outW: number,
    flip: boolean,
    colour: Float32Array | null,
    scale: number,
    shift: number,
    out: Float32Array,
  ): void;
  addGaussianNoise(
    audio: Float32Array,
    out: Float32Array,
    sigma: number,
    words: Uint32Array,
    zigK: Int32Array,
    zigW: Float64Array,
    zigF: Float64Array,
    zigR: number,
  ): void;
  dropoutMask(out: Float32Array, rate: number, words: Uint32Array): void;
  /** out[j] = sum_i x[i * out.length + j]: a sum over the leading axes. */
  sumLeading(x: Float32Array, out: Float32Array): void;
  /** x[i * row.length + j] += row[j], in place: a dense layer's bias. */
  addRows(x: Float32Array, row: Float32Array): void;
  /** out[i] += x[i] (same lengths). */
  addInto(out: Float32Array, x: Float32Array): void;
  /** native/ort_gemm.c: ONNX Runtime's C API in the library at `path` (throws why not). */
  ortOpen(path: string): void;
  /** A session of one ONNX model on `threads` intra-op threads. */
  ortSession(model: Uint8Array, threads: number): object;
  /** Runs a session's graph with inputs A, B and the output Y over the given arrays. */
  ortMatmul(
    session: object,
    a: Float32Array,
    dimsA: readonly number[],
    b: Float32Array,
    dimsB: readonly number[],
    out: Float32Array,
    dimsOut: readonly number[],
  ): void;
  /** native/patches.c `video_patches`; dims [batch, frames, height, width, pt, ph, pw]. */
  videoPatches(
    video: Float32Array,
    out: Float32Array,
    dims: Int32Array,
    t: Int32Array,
    h: Int32Array,
    w: Int32Array,
  ): void;
  /** out = x * dropoutMask(x.length, rate, words), without the mask. */
  dropoutApply(x: Float32Array, out: Float32Array, rate: number, words: Uint32Array): void;
  /**
   * native/attention.c: without dout, softmax(scale q k^T + bias) v with dropout into out (q, k, v, out
   * [batch, tokens, heads * headDim]; bias [batch, heads, tokens, tokens] or null); with dout, the backward pass
   * into dq (the `out` argument), dk, dv and dscores (or null). Large calls split the heads over up to `threads`
   * threads (results independent of it).
   */
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    bias: Float32Array | null,
    dout: Float32Array | null,
    out: Float32Array,
    dk: Float32Array | null,
    dv: Float32Array | null,
    dscores: Float32Array | null,
    batch: number,
    tokens: number,
    heads: number,
    headDim: number,
    scale: number,
    rate: number,
    words: Uint32Array,
    threads: number,
    /** [batch, heads, tokens, tokens]: the forward pass keeps the probabilities here, the backward reads them. */
    probs: Float32Array | null,
  ): void;
  gelu(x: Float32Array, y: Float32Array): void;
  /** native/binding.c `Norm`: op 0-2 layer norm (y, dx, dgamma), 3-5 RMS norm (y, dx, dscale). */
  norm(
    op: number,
    x: Float32Array,
    p: Float32Array,
    q: Float32Array | null,
    out: Float32Array,
    d: number,
    eps: number,
  ): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  sumSquares(g: Float32Array): number;
  adamUpdate(
    p: Float32Array,
    m: Float32Array,
    v: Float32Array,
    g: Float32Array,
    factor: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    lrT: number,
    /** Ascending, distinct rows of `width` elements outside which g is zero (native/optim.c adam_update_rows). */
    rows?: Int32Array,
    width?: number,
  ): number;
  /**
   * native/nibble_scan.c: the best outRows.length of `rows` rows of 4-bit codes (the layout of
   * sinks/quantized-scan.ts) by their integer dot product with `query`, best first (ties to the lower row), rows
   * whose `alive` byte is 0 passed over; returns how many were found.
   */
  nibbleScanTop(
    codes: Uint8Array,
    rows: number,
    query: Int8Array,
    alive: Uint8Array | null,
    outRows: Int32Array,
    outScores: Int32Array,
  ): number;
  /**
   * Which of nibbleScanTop's kernels runs: "avx512-vnni", "avx2" or "scalar"; `use` switches to one first (tests
   * compare them), throwing where the CPU lacks it.
   */
  nibbleScanKernel(use?: string): string;
  /**
   * native/sgemm.c: op(A) @ op(B) into out, with ortMatmul's dims (ranks 2-3, a rank-3 batch broadcast against a
   * rank-2 operand), the columns split over up to `threads` threads (results independent of it).
   */
  sgemm(
    a: Float32Array,
    dimsA: readonly number[],
    b: Float32Array,
    dimsB: readonly number[],
    transA: boolean,
    transB: boolean,
    out: Float32Array,
    dimsOut: readonly number[],
    threads: number,
  ): void;
  /** Which of sgemm's microkernels runs: "avx512", "avx2" or "c"; `use` switches first (tests), throwing where unsupported. */
  sgemmKernel(use?: string): string;
}

interface JpegDecoder {
  decodeJpegRegion(
    jpeg: Uint8Array,
    width: number,
    height: number,
    x: number,
    y: number,
    w: number,
    h: number,
    out: Uint8Array,
    outOffset: number,
  ): void;
}

/** Built by node-gyp under the package root (two levels above dist/operators). */
function load<T>(library: string): T | Error {
  try {
    return createRequire(import.meta.url)(library) as T;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

const loaded = load<NativeKernels>("../../build/Release/vatt_kernels.node");
const jpeg = load<JpegDecoder>("../../native/jpeg/build/Release/vatt_jpeg.node");

/** Whether the compiled kernels loaded, else the reason they did not. */
export const nativeKernelStatus: { available: boolean; reason?: string } =
  loaded instanceof Error ? { available: false, reason: loaded.message.split("\n")[0] } : { available: true };

/** Whether callers should use the native kernels: loaded, and not turned off with VATT_NATIVE=0. */
export const useNativeKernels = nativeKernelStatus.available && process.env.VATT_NATIVE !== "0";

/** Whether the libjpeg region decoder loaded, else the reason it did not. */
export const jpegDecoderStatus: { available: boolean; reason?: string } =
  jpeg instanceof Error ? { available: false, reason: jpeg.message.split("\n")[0] } : { available: true };

/** Whether the Parquet source should decode frames with it (loaded, and VATT_NATIVE is not 0). */
export const useNativeJpeg = jpegDecoderStatus.available && process.env.VATT_NATIVE !== "0";

function library(): NativeKernels {
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

/** Same contract as crop.ts `cropResizeColour` (which checks the box). */
export function cropResizeColourNative(
  frames: Uint8Array,
  numFrames: number,
  height: number,
  width: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
  flip: boolean,
  colour: ColourFactors | undefined,
  symmetric: boolean,
  out: Float32Array,
): Float32Array {
  const factors = colour
    ? new Float32Array([colour.brightness, Math.max(0, colour.saturation), colour.contrast, colour.hue * 6])
    : null;
  library().cropResizeColour(
    frames,
    numFrames,
    height,
    width,
    box.x,
    box.y,
    box.width,
    box.height,
    outHeight,
    outWidth,
    flip,
    factors,
    symmetric ? 2 : 1,
    symmetric ? -1 : 0,
    out,
  );
  return out;
}

/** The native ONNX Runtime caller (native/ort_gemm.c), or undefined where the native kernels are not in use. */
export function nativeOrtCaller(): Pick<NativeKernels, "ortOpen" | "ortSession" | "ortMatmul"> | undefined {
  return useNativeKernels && !(loaded instanceof Error) && typeof loaded.ortOpen === "function"
    ? loaded
    : undefined;
}

/**
 * Voxels of a clip for the listed tokens (model/tokens.ts `videoPatches`) natively, or false when the native
 * kernels are not in use (the caller copies in JavaScript).
 */
export function videoPatchesNative(
  video: Float32Array,
  out: Float32Array,
  dims: [number, number, number, number, number, number, number],
  positions: [Int32Array, Int32Array, Int32Array],
): boolean {
  if (!useNativeKernels || loaded instanceof Error) return false;
  loaded.videoPatches(video, out, Int32Array.from(dims), ...positions);
  return true;
}

/** Ziggurat tables as audio.ts builds them. */
export interface ZigguratTables {
  k: Int32Array;
  w: Float64Array;
  f: Float64Array;
  r: number;
}

/** Same contract as audio.ts `addGaussianNoise` after its sigma and seed words are chosen: writes all of `out`. */
export function addGaussianNoiseNative(
  audio: Float32Array,
  out: Float32Array,
  sigma: number,
  words: Uint32Array,
  zig: ZigguratTables,
): Float32Array {
  library().addGaussianNoise(audio, out, sigma, words, zig.k, zig.w, zig.f, zig.r);
  return out;
}

/**
 * Decodes the `box` region of a `width` x `height` RGB JPEG into `out` at `outOffset` (box.width * box.height * 3
 * bytes, rows packed). Throws libjpeg's message for a damaged frame, or the sizes for a frame of another size.
 */
export function decodeJpegRegionNative(
  data: Uint8Array,
  width: number,
  height: number,
  box: CropBox,
  out: Uint8Array,
  outOffset: number,
): void {
  if (jpeg instanceof Error) throw jpeg;
  jpeg.decodeJpegRegion(data, width, height, box.x, box.y, box.width, box.height, out, outOffset);
}

/**
 * The native loops of the training step (native/optim.c, activations.c, norms.c, dropout.c, attention.c,
 * rows.c), or undefined where not in use.
 */
export function nativeModelKernels():
  | Pick<
      NativeKernels,
      | "sumSquares"
      | "adamUpdate"
      | "gelu"
      | "geluGrad"
      | "norm"
      | "dropoutApply"
      | "attention"
      | "sumLeading"
      | "addRows"
      | "addInto"
    >
  | undefined {
  return useNativeKernels && !(loaded instanceof Error) ? loaded : undefined;
}

/** The packed-panel SGEMM (native/sgemm.c), or undefined where the native kernels are not in use (or predate it). */
export function nativeSgemm(): Pick<NativeKernels, "sgemm" | "sgemmKernel"> | undefined {
  return useNativeKernels && !(loaded instanceof Error) && typeof loaded.sgemm === "function"
    ? loaded
    : undefined;
}

/** The embedding index's first-stage scan (native/nibble_scan.c), or undefined where not in use. */
export function nativeSearchKernels(): Pick<NativeKernels, "nibbleScanTop" | "nibbleScanKernel"> | undefined {
  return useNativeKernels && !(loaded instanceof Error) ? loaded : undefined;
}

/**
 * The 32 random bits of element `index` of the dropout mask keyed by `words` (native/dropout_hash.h
 * `dropout_bits`). Counter-based: every element is drawn on its own, so native loops vectorise and a backward pass
 * can draw any element again.
 */
export function dropoutBits(index: number, words: readonly number[]): number {
  return fmix32((fmix32(fmix32((index ^ words[0]) >>> 0) + words[1]) ^ words[2]) >>> 0);
}

/** Elements whose bits are at least this are kept: ceil(rate * 2^32), at most 2^32 - 1. */
export function dropoutThreshold(rate: number): number {
  return Math.min(Math.ceil(rate * 2 ** 32), 2 ** 32 - 1);
}

/**
 * Inverted-dropout mask of `length`: 1 / (1 - rate) where `dropoutBits` of the element reach
 * `dropoutThreshold(rate)`, else 0; native when the kernels are in use, else the same function in JavaScript.
 */
export function dropoutMask(
  length: number,
  rate: number,
  words: [number, number, number, number],
): Float32Array {
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`dropoutMask: rate must be in [0, 1), got ${rate}`);
  const mask = new Float32Array(length);
  if (useNativeKernels && !(loaded instanceof Error)) {
    loaded.dropoutMask(mask, rate, Uint32Array.from(words));
    return mask;
  }
  const threshold = dropoutThreshold(rate);
  const kept = Math.fround(1 / (1 - rate));
  for (let i = 0; i < length; i++) mask[i] = dropoutBits(i, words) >= threshold ? kept : 0;
  return mask;
}
