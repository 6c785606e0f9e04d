/**
 * Turning decoded frames into the clip's buffers: pictures to RGB at the output size (display orientation, the crop
 * box, mirroring) with libswscale, audio to mono float32 with libswresample, and the contexts of both kept from clip
 * to clip. Used by the decoder in media/libav.ts.
 */
import {
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUV420P,
  AV_PIX_FMT_YUV422P,
  AV_PIX_FMT_YUV444P,
  AV_PIX_FMT_YUVJ420P,
  AV_PIX_FMT_YUVJ422P,
  AV_PIX_FMT_YUVJ444P,
  AV_SAMPLE_FMT_FLT,
  SWS_BILINEAR,
} from "node-av/constants";
import { FFmpegError, type Frame, SoftwareResampleContext, SoftwareScaleContext } from "node-av/lib";
import { scaledSize } from "../core/geometry.js";
import { type LibavDecodeJob, LibavError } from "./libav-input.js";

/** log2 of the chroma subsampling of the 8-bit planar YUV formats the one-call path takes. */
const PLANAR_YUV = new Map<number, [number, number]>([
  [AV_PIX_FMT_YUV420P, [1, 1]],
  [AV_PIX_FMT_YUVJ420P, [1, 1]],
  [AV_PIX_FMT_YUV422P, [1, 0]],
  [AV_PIX_FMT_YUVJ422P, [1, 0]],
  [AV_PIX_FMT_YUV444P, [0, 0]],
  [AV_PIX_FMT_YUVJ444P, [0, 0]],
]);

/** swscale contexts by their parameters: one conversion per clip shape, reused while it repeats. */
export class ScalerCache {
  private readonly contexts = new Map<string, SoftwareScaleContext>();
  get(sw: number, sh: number, format: number, dw: number, dh: number, to = AV_PIX_FMT_RGB24 as number) {
    const key = `${sw}x${sh}:${format}>${dw}x${dh}:${to}`;
    let ctx = this.contexts.get(key);
    if (ctx) {
      this.contexts.delete(key); // most recently used goes last
      this.contexts.set(key, ctx);
      return ctx;
    }
    ctx = new SoftwareScaleContext();
    ctx.getContext(sw, sh, format as never, dw, dh, to as never, SWS_BILINEAR);
    if (this.contexts.size >= 16) {
      const [oldKey, old] = this.contexts.entries().next().value as [string, SoftwareScaleContext];
      old.freeContext();
      this.contexts.delete(oldKey);
    }
    this.contexts.set(key, ctx);
    return ctx;
  }
}

/** Resamplers by input format; re-initialised per clip, which keeps the filter bank when nothing changed. */
export class ResamplerCache {
  private readonly contexts = new Map<string, SoftwareResampleContext>();
  get(frame: Frame, sampleRate: number): SoftwareResampleContext {
    const layout = frame.channelLayout;
    const key = `${frame.sampleRate}:${frame.format}:${layout.nbChannels}:${layout.mask}:${sampleRate}`;
    let ctx = this.contexts.get(key);
    if (ctx) ctx.close();
    else {
      ctx = new SoftwareResampleContext();
      const mono = { nbChannels: 1, order: 1, mask: 4n } as typeof layout; // AV_CHANNEL_ORDER_NATIVE, FRONT_CENTER
      ctx.allocSetOpts2(mono, AV_SAMPLE_FMT_FLT, sampleRate, layout, frame.format as never, frame.sampleRate);
      this.contexts.set(key, ctx);
    }
    const code = ctx.init();
    if (code < 0) throw new LibavError(`cannot resample audio: ${FFmpegError.strerror(code)}`, "invalid");
    return ctx;
  }
}

export const BYTES_PER_SAMPLE = [1, 2, 4, 4, 8, 1, 2, 4, 4, 8, 8, 8]; // AV_SAMPLE_FMT_U8 ... S64P
export const isPlanar = (format: number) => (format >= 5 && format <= 9) || format === 11;

/**
 * The clip's output buffer and the function that writes output frame `index` from a decoded picture (the first one
 * tells the format and size; later ones must match it).
 */
export function pictureConverter(
  job: LibavDecodeJob,
  first: Frame,
  rotation: number,
  scalers: ScalerCache,
  allocate: (bytes: number) => Uint8Array = (bytes) => new Uint8Array(bytes),
): {
  out: Uint8Array;
  outWidth: number;
  outHeight: number;
  convert: (src: Frame, index: number) => void;
} {
  const format = first.format as number;
  const chroma = PLANAR_YUV.get(format);
  // Other formats (10-bit, packed, paletted, hardware) go to an ffmpeg process: the same frames, no guesswork.
  if (!chroma)
    throw new LibavError(`pixel format ${format} of '${job.file}' is left to ffmpeg`, "unsupported");
  const [cw, ch] = chroma;
  const upright = new UprightPlanes(first, rotation, chroma);
  const { width: displayWidth, height: displayHeight } = upright;
  const size = scaledSize(displayWidth, displayHeight, job.shortSide);
  const g = job.geometry;
  if (g && (g.box.x + g.box.width > size.width || g.box.y + g.box.height > size.height)) {
    // Drawn for the probed size: a file whose pictures are not that size is ffmpeg's to handle (or refuse).
    throw new LibavError(`the picture of '${job.file}' is not the size it was probed at`, "unsupported");
  }
  const outWidth = g?.outWidth ?? size.width;
  const outHeight = g?.outHeight ?? size.height;
  const frameBytes = outWidth * outHeight * 3;
  const out = allocate(job.frames * frameBytes);
  const target = (index: number) => [
    Buffer.from(out.buffer, out.byteOffset + index * frameBytes, frameBytes),
  ];
  let write: (planes: Buffer[], strides: number[], index: number) => void;
  if (!g) {
    // No crop: one call from the upright planes to the scaled RGB picture (ffmpeg's single scale).
    write = (planes, strides, index) =>
      scalers
        .get(displayWidth, displayHeight, format, outWidth, outHeight)
        .scaleSync(planes, strides, 0, displayHeight, target(index), [outWidth * 3]);
  } else {
    // ffmpeg's filter graph step for step, in the decoder's own format: scale to the short side, crop (its corner
    // on the chroma grid and its size whole chroma samples, as the crop filter makes them), then scale to the
    // output size and RGB in one call, then mirror.
    const picture = new PlanarPicture(size.width, size.height, cw, ch);
    const { box, flip } = g;
    const bx = (box.x >> cw) << cw;
    const by = (box.y >> ch) << ch;
    const bw = Math.max(1 << cw, (box.width >> cw) << cw);
    const bh = Math.max(1 << ch, (box.height >> ch) << ch);
    const crop = picture.planes.map((plane, p) => {
      const [x, y] = p === 0 ? [bx, by] : [bx >> cw, by >> ch];
      return plane.subarray(y * picture.strides[p] + x);
    });
    write = (planes, strides, index) => {
      scalers
        .get(displayWidth, displayHeight, format, size.width, size.height, format)
        .scaleSync(planes, strides, 0, displayHeight, picture.planes, picture.strides);
      scalers
        .get(bw, bh, format, outWidth, outHeight)
        .scaleSync(crop, picture.strides, 0, bh, target(index), [outWidth * 3]);
      if (flip) mirrorRows(out.subarray(index * frameBytes, (index + 1) * frameBytes), outWidth, outHeight);
    };
  }
  return {
    out,
    outWidth,
    outHeight,
    convert: (src, index) => {
      const { planes, strides } = upright.of(src);
      write(planes, strides, index);
    },
  };
}

/** A picture in 8-bit planar YUV with the given chroma subsampling, in one buffer, rows 64-byte aligned. */
class PlanarPicture {
  readonly planes: Buffer[];
  readonly strides: number[];
  constructor(width: number, height: number, cw: number, ch: number) {
    const chromaWidth = (width + (1 << cw) - 1) >> cw;
    const chromaHeight = (height + (1 << ch) - 1) >> ch;
    this.strides = [(width + 63) & ~63, (chromaWidth + 63) & ~63, (chromaWidth + 63) & ~63];
    const sizes = [this.strides[0] * height, this.strides[1] * chromaHeight, this.strides[2] * chromaHeight];
    const all = Buffer.alloc(sizes[0] + sizes[1] + sizes[2]);
    this.planes = [
      all.subarray(0, sizes[0]),
      all.subarray(sizes[0], sizes[0] + sizes[1]),
      all.subarray(sizes[0] + sizes[1]),
    ];
  }
}

/**
 * Decoded 8-bit planar YUV pictures in display orientation: most video passes through; a rotated one is turned plane
 * by plane, as ffmpeg's autorotate does (`transpose=clock` for 90, `hflip,vflip` for 180, `transpose=cclock` for
 * 270).
 */
class UprightPlanes {
  readonly width: number;
  readonly height: number;
  private readonly turned?: PlanarPicture;

  constructor(
    first: Frame,
    private readonly rotation: number,
    private readonly chroma: [number, number],
  ) {
    const quarter = rotation === 90 || rotation === 270;
    this.width = quarter ? first.height : first.width;
    this.height = quarter ? first.width : first.height;
    const [cw, ch] = chroma;
    // A quarter turn swaps the chroma subsampling's axes: only 4:2:0 and 4:4:4 stay themselves.
    if (quarter && cw !== ch)
      throw new LibavError("a rotated 4:2:2 picture is left to ffmpeg", "unsupported");
    if (rotation !== 0) this.turned = new PlanarPicture(this.width, this.height, cw, ch);
  }

  of(src: Frame): { planes: Buffer[]; strides: number[] } {
    const planes = (src.data as Buffer[]).slice(0, 3);
    const strides = src.linesize.slice(0, 3);
    if (!this.turned) return { planes, strides };
    const [cw, ch] = this.chroma;
    for (let p = 0; p < 3; p++) {
      const w = p === 0 ? src.width : (src.width + (1 << cw) - 1) >> cw;
      const h = p === 0 ? src.height : (src.height + (1 << ch) - 1) >> ch;
      turnPlane(planes[p], strides[p], w, h, this.turned.planes[p], this.turned.strides[p], this.rotation);
    }
    return { planes: this.turned.planes, strides: this.turned.strides };
  }
}

/** Turns one w x h plane by `degrees` clockwise into `dst` (rows of `dstStride` bytes). */
function turnPlane(
  src: Uint8Array,
  srcStride: number,
  w: number,
  h: number,
  dst: Uint8Array,
  dstStride: number,
  degrees: number,
): void {
  for (let y = 0; y < h; y++) {
    const row = y * srcStride;
    for (let x = 0; x < w; x++) {
      const v = src[row + x];
      if (degrees === 90) dst[x * dstStride + (h - 1 - y)] = v;
      else if (degrees === 270) dst[(w - 1 - x) * dstStride + y] = v;
      else dst[(h - 1 - y) * dstStride + (w - 1 - x)] = v;
    }
  }
}

/** Mirrors each row of a packed RGB picture in place. */
function mirrorRows(rgb: Uint8Array, width: number, height: number): void {
  for (let y = 0; y < height; y++) {
    let a = y * width * 3;
    let b = a + (width - 1) * 3;
    for (; a < b; a += 3, b -= 3) {
      for (let c = 0; c < 3; c++) {
        const v = rgb[a + c];
        rgb[a + c] = rgb[b + c];
        rgb[b + c] = v;
      }
    }
  }
}
