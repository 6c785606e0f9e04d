/**
 * Geometry and colour records shared by the decoders (which can crop, scale and flip in FFmpeg's filter graph),
 * the augmentation operators and the native kernels: plain numbers, no behaviour beyond the short-side scale.
 */

/** A crop rectangle in whole pixels of the frame it applies to. */
export interface CropBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One clip's colour augmentation, drawn once and applied to every frame (VATT's order, see operators/color.ts). */
export interface ColourFactors {
  /** Added to every value (reference: uniform in [-32/255, 32/255]). */
  brightness: number;
  /** Saturation multiplier (reference: [0.6, 1.4]). */
  saturation: number;
  /** Contrast multiplier around the per-frame per-channel mean (reference: [0.6, 1.4]). */
  contrast: number;
  /** Hue rotation in turns (reference: [-0.2, 0.2]). */
  hue: number;
}

/** A crop, resize and flip that the decoder applies (ffmpeg's filter graph, or libav's swscale steps). */
export interface FilterGeometry {
  /** Crop box in pixels of the frame scaled to `shortSide`. */
  box: CropBox;
  outWidth: number;
  outHeight: number;
  flip: boolean;
}

/** The size of a `width` x `height` frame scaled so its short side is `shortSide` (0: unscaled), as ffmpeg rounds. */
export function scaledSize(
  width: number,
  height: number,
  shortSide: number,
): { width: number; height: number } {
  if (shortSide <= 0) return { width, height };
  return width <= height
    ? { width: shortSide, height: Math.round((height * shortSide) / width) }
    : { width: Math.round((width * shortSide) / height), height: shortSide };
}
