/**
 * The native build of the training video kernel (native/crop_colour.c, compiled by `npm run build` with node-gyp
 * against Node's own headers; AVX-512, AVX2 and baseline versions chosen when it loads). Same arguments and results
 * as crop.ts `cropResizeColour`, within float rounding: it works in float32 where the JavaScript reference keeps
 * doubles (test/operators/crop-native.test.ts compares them).
 *
 * Where no C compiler was available at install, the library is missing and crop.ts runs the JavaScript kernel;
 * `nativeKernelStatus` says which and why.
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

/** "native" when the compiled kernels loaded, else the reason they did not. */
export const nativeKernelStatus: { available: boolean; reason?: string } =
  loaded instanceof Error ? { available: false, reason: loaded.message.split("\n")[0] } : { available: true };

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
  if (loaded instanceof Error) throw loaded;
  const factors = colour
    ? new Float32Array([colour.brightness, Math.max(0, colour.saturation), colour.contrast, colour.hue * 6])
    : null;
  loaded.cropResizeColour(
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
