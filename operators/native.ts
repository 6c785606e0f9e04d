/**
 * The native builds of the per-clip hot loops (native/*.c, compiled by `npm run build` with node-gyp against Node's
 * own headers): the training video kernel (crop.ts `cropResizeColour`; AVX-512, AVX2 and baseline versions chosen
 * when it loads) and the audio noise (audio.ts `addGaussianNoise`). Each has the same arguments and results as its
 * JavaScript reference, within float rounding (test/operators/native.test.ts compares them).
 *
 * Where no C compiler was available at install, the library is missing and the JavaScript kernels run;
 * `nativeKernelStatus` says which and why, and `VATT_NATIVE=0` forces JavaScript.
 */
import { createRequire } from "node:module";
import type { ColourFactors } from "./color.js";
import type { CropBox } from "./crop.js";

interface NativeKernels {
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
}

/** Built by node-gyp into build/Release at the package root (two levels above dist/operators). */
const LIBRARY = "../../build/Release/vatt_kernels.node";

const loaded: NativeKernels | Error = (() => {
  try {
    return createRequire(import.meta.url)(LIBRARY) as NativeKernels;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
})();

/** Whether the compiled kernels loaded, else the reason they did not. */
export const nativeKernelStatus: { available: boolean; reason?: string } =
  loaded instanceof Error ? { available: false, reason: loaded.message.split("\n")[0] } : { available: true };

/** Whether callers should use the native kernels: loaded, and not turned off with VATT_NATIVE=0. */
export const useNativeKernels = nativeKernelStatus.available && process.env.VATT_NATIVE !== "0";

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
