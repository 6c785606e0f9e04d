/**
 * Decoding inside this process with FFmpeg's own libraries (libavformat, libavcodec, libswscale, libswresample),
 * through node-av's prebuilt N-API binding: the code the worker threads of pipeline/libav-pool.ts run.
 *
 * Why: a clip of the demo costs ~8.5 ms of CPU as one ffmpeg process (~6 ms of it starting the process and opening
 * the file) and ~2 ms here. The contract is the one of the ffmpeg command in operators/decode.ts
 * (`ffmpegDecodeArgs`), rebuilt from its parts so that nothing per clip has to be set up twice:
 * - Seek: to the keyframe before `start` (relative to the file's start time), decode, and drop every frame and
 *   audio sample before `start` (ffmpeg's accurate seek).
 * - Frame rate: output frame k is the picture on screen at start + k / rate, as the `fps` filter with
 *   `start_time=0:round=up` makes it: each frame goes to the first slot at or after its timestamp, the latest one
 *   wins, and slots before the first frame get the first frame. Only the frames that win a slot are converted.
 * - Geometry: display orientation (rotation metadata), then the crop box of the frame scaled to `shortSide`, resized
 *   bilinearly to the output size and mirrored when asked. Unrotated 8-bit planar YUV (almost all video) goes from
 *   the decoder's planes to the output RGB in one swscale call per frame, over the box mapped back to source pixels
 *   (its corner on the chroma grid: at most one source pixel off). Anything else is first converted to RGB at its
 *   own size.
 * - Audio: mono float32 at `sampleRate` by libswresample (the resampler ffmpeg's `-ar` uses), whose filter bank is
 *   built once per input format and kept.
 *
 * Everything here is synchronous: it runs in a worker thread, never on the main thread.
 */
import {
  AV_DISPOSITION_ATTACHED_PIC,
  AV_LOG_QUIET,
  AV_NOPTS_VALUE,
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUV420P,
  AV_PIX_FMT_YUV422P,
  AV_PIX_FMT_YUV444P,
  AV_PIX_FMT_YUVJ420P,
  AV_PIX_FMT_YUVJ422P,
  AV_PIX_FMT_YUVJ444P,
  AV_PKT_DATA_DISPLAYMATRIX,
  AV_SAMPLE_FMT_FLT,
  AVERROR_ENOENT,
  AVMEDIA_TYPE_AUDIO,
  AVMEDIA_TYPE_VIDEO,
  AVSEEK_FLAG_BACKWARD,
  SWS_BILINEAR,
} from "node-av/constants";
import {
  Codec,
  CodecContext,
  FFmpegError,
  FormatContext,
  Frame,
  Log,
  Packet,
  SoftwareResampleContext,
  SoftwareScaleContext,
  type Stream,
} from "node-av/lib";
import { type FilterGeometry, scaledSize } from "../core/geometry.js";
import type { MediaInfo } from "./probe.js";

Log.setLevel(AV_LOG_QUIET); // failures come back as return codes; a damaged file must not flood stderr

/** One clip to decode: `ffmpegDecodeArgs`'s inputs. */
export interface LibavDecodeJob {
  file: string;
  /** Window start in seconds after the file's start time. */
  start: number;
  /** Output frames. */
  frames: number;
  /** Output frames per second (fps / stride). */
  rate: number;
  /** Length of the clip in seconds (frames / rate). */
  seconds: number;
  sampleRate: number;
  /** Audio samples wanted. */
  samples: number;
  /** Short side of the scaled frame the crop box refers to (0 = display size). */
  shortSide: number;
  geometry?: FilterGeometry;
}

/** The decode, in buffers the clip keeps: `got` frames of width x height RGB, `audioSamples` of mono audio. */
export interface LibavDecodeResult {
  frames: Uint8Array;
  got: number;
  width: number;
  height: number;
  /** Undefined when the file has no audio stream. */
  audio: Float32Array | undefined;
  audioSamples: number;
}

/**
 * A failure: "missing" and "invalid" as MediaError's kinds; "unsupported" for a file this decoder leaves to an ffmpeg
 * process (a pixel format other than 8-bit planar YUV, a picture size that changes within the clip).
 */
export class LibavError extends Error {
  constructor(
    message: string,
    readonly kind: "missing" | "invalid" | "unsupported",
  ) {
    super(message);
  }
}

function check(code: number, what: string, file: string): void {
  if (code >= 0) return;
  const kind = code === AVERROR_ENOENT ? "missing" : "invalid";
  throw new LibavError(`${what} '${file}': ${FFmpegError.strerror(code)}`, kind);
}

function seconds(ts: bigint, tb: { num: number; den: number }): number {
  return (Number(ts) * tb.num) / tb.den;
}

/** Rotation in degrees (0, 90, 180, 270) as ffprobe reports it turned around: the display matrix, else `rotate`. */
function rotationOf(stream: Stream): number {
  let degrees = Number(stream.metadata?.get("rotate") ?? 0);
  const m = stream.codecpar.getCodedSideData(AV_PKT_DATA_DISPLAYMATRIX);
  if (m && m.length >= 36) {
    const v = (i: number) => m.readInt32LE(i * 4) / 65536;
    const s0 = Math.hypot(v(0), v(3));
    const s1 = Math.hypot(v(1), v(4));
    if (s0 > 0 && s1 > 0) degrees = (Math.atan2(v(1) / s1, v(0) / s0) * 180) / Math.PI;
  }
  const normalised = (((Math.round(degrees / 90) * 90) % 360) + 360) % 360;
  return Number.isFinite(normalised) ? normalised : 0;
}

/** An open input with its chosen streams; `close` frees everything. */
class Input {
  readonly fmt = new FormatContext();
  video: Stream | undefined;
  audio: Stream | undefined;
  /** The file's start time in seconds (the earliest stream start), which `-ss` is relative to. */
  startTime = 0;
  /** Whether the container describes its streams and indexes its keyframes in its header (MP4/MOV, Matroska/WebM). */
  indexed = false;

  constructor(readonly file: string) {
    check(this.fmt.openInputSync(file, null, null), "cannot open", file);
    try {
      this.choose();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private choose(): void {
    const file = this.file;
    // MP4/MOV and Matroska/WebM headers describe every stream (sizes, rates, start times) and index their keyframes:
    // those are decoded here. Other containers (MPEG-TS, raw streams, ...) need packets read to learn their streams
    // and seek by bytes: they are probed here (packets read, as ffprobe does) and decoded by an ffmpeg process.
    const format = this.fmt.iformat?.name ?? "";
    this.indexed = format.startsWith("mov,mp4") || format.startsWith("matroska");
    if (!this.indexed) check(this.fmt.findStreamInfoSync(null), "cannot read the streams of", file);
    const streams = this.fmt.streams;
    this.video = streams.find(
      (s) => s.codecpar.codecType === AVMEDIA_TYPE_VIDEO && !(s.disposition & AV_DISPOSITION_ATTACHED_PIC),
    );
    this.audio = streams.find((s) => s.codecpar.codecType === AVMEDIA_TYPE_AUDIO);
    const starts = streams
      .filter((s) => s.startTime !== AV_NOPTS_VALUE)
      .map((s) => seconds(s.startTime, s.timeBase));
    this.startTime = this.fmt.startTime !== AV_NOPTS_VALUE ? Number(this.fmt.startTime) / 1e6 : 0;
    if (this.fmt.startTime === AV_NOPTS_VALUE && starts.length > 0) this.startTime = Math.min(...starts);
  }

  decoder(stream: Stream): CodecContext {
    const codec = Codec.findDecoder(stream.codecpar.codecId);
    if (!codec) throw new LibavError(`no decoder for a stream of '${this.file}'`, "invalid");
    const ctx = new CodecContext();
    try {
      ctx.allocContext3(codec);
      check(ctx.parametersToContext(stream.codecpar), "cannot set up a decoder for", this.file);
      ctx.threadCount = 1; // one clip per worker, one worker per core
      check(ctx.open2Sync(codec, null), "cannot open the decoder for", this.file);
      return ctx;
    } catch (err) {
      ctx.freeContext();
      throw err;
    }
  }

  close(): void {
    this.fmt.closeInputSync();
  }
}

/** What the libav probe knows, as `probe`'s record (the fields the decode path reads are exact). */
export function libavProbe(file: string): MediaInfo {
  const input = new Input(file);
  try {
    const { video, audio, fmt } = input;
    if (!video && !audio) throw new LibavError(`'${file}' has no video or audio stream`, "invalid");
    const durationOf = (s: Stream | undefined) =>
      s && s.duration !== AV_NOPTS_VALUE ? seconds(s.duration, s.timeBase) : 0;
    const rate = (r: { num: number; den: number } | undefined) => (r && r.den > 0 ? r.num / r.den : 0);
    const frames = video ? Number(video.nbFrames) : 0;
    return {
      file,
      duration:
        fmt.duration !== AV_NOPTS_VALUE && fmt.duration > 0n
          ? Number(fmt.duration) / 1e6
          : Math.max(durationOf(video), durationOf(audio)),
      formatName: fmt.iformat?.name ?? "",
      hasVideo: video !== undefined,
      hasAudio: audio !== undefined,
      videoCodec: video ? (Codec.findDecoder(video.codecpar.codecId)?.name ?? undefined) : undefined,
      audioCodec: audio ? (Codec.findDecoder(audio.codecpar.codecId)?.name ?? undefined) : undefined,
      width: video?.codecpar.width ?? 0,
      height: video?.codecpar.height ?? 0,
      rotation: video ? rotationOf(video) : 0,
      avgFrameRate: rate(video?.avgFrameRate),
      realFrameRate: rate(video?.rFrameRate),
      frameCount: frames > 0 ? frames : undefined,
      audioSampleRate: audio?.codecpar.sampleRate ?? 0,
      audioChannels: audio?.codecpar.channels ?? 0,
    };
  } finally {
    input.close();
  }
}

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
class ScalerCache {
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
class ResamplerCache {
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

const BYTES_PER_SAMPLE = [1, 2, 4, 4, 8, 1, 2, 4, 4, 8, 8, 8]; // AV_SAMPLE_FMT_U8 ... S64P
const isPlanar = (format: number) => (format >= 5 && format <= 9) || format === 11;

/** Per-worker state: conversion contexts kept from clip to clip. */
export class LibavDecoder {
  private readonly scalers = new ScalerCache();
  private readonly resamplers = new ResamplerCache();

  decode(job: LibavDecodeJob): LibavDecodeResult {
    const input = new Input(job.file);
    if (!input.indexed) {
      input.close();
      throw new LibavError(`the container of '${job.file}' is left to ffmpeg`, "unsupported");
    }
    const packet = new Packet();
    const frame = new Frame();
    const pending = new Frame();
    let video: CodecContext | undefined;
    let audio: CodecContext | undefined;
    packet.alloc();
    frame.alloc();
    pending.alloc();
    try {
      if (!input.video) {
        return { frames: new Uint8Array(0), got: 0, width: 0, height: 0, audio: undefined, audioSamples: 0 };
      }
      video = input.decoder(input.video);
      audio = input.audio ? input.decoder(input.audio) : undefined;
      return this.run(job, input, video, audio, packet, frame, pending);
    } finally {
      video?.freeContext();
      audio?.freeContext();
      packet.free();
      frame.free();
      pending.free();
      input.close();
    }
  }

  private run(
    job: LibavDecodeJob,
    input: Input,
    videoCtx: CodecContext,
    audioCtx: CodecContext | undefined,
    packet: Packet,
    frame: Frame,
    pending: Frame,
  ): LibavDecodeResult {
    const vs = input.video as Stream;
    const as = input.audio;
    const origin = input.startTime + job.start;
    const rotation = rotationOf(vs);
    // Read once: each property read crosses into the binding and builds a new object.
    const videoTime = vs.timeBase;
    const videoIndex = vs.index;
    const audioTime = as?.timeBase ?? videoTime;
    const audioIndex = as?.index ?? -1;
    const limit = job.seconds + 2 / job.rate; // as `-t` on the input
    // A failed seek leaves the demuxer at the start: decoding on from there is slower, not wrong (as ffmpeg does).
    input.fmt.seekFrameSync(-1, BigInt(Math.round(origin * 1e6)), AVSEEK_FLAG_BACKWARD);

    let out: Uint8Array | undefined;
    let outWidth = 0;
    let outHeight = 0;
    let slot = 0; // the next output frame to fill
    let hasPending = false;
    let pendingSlot = 0;
    let pendingEnd = 0; // when the pending picture leaves the screen, in seconds after `start`
    const avg = vs.avgFrameRate;
    const frameDuration = avg && avg.num > 0 && avg.den > 0 ? avg.den / avg.num : 1 / job.rate;
    let videoDone = false;
    let convert: ((src: Frame, index: number) => void) | undefined;
    let first = { width: 0, height: 0, format: -1 };

    const emit = (upTo: number) => {
      // `pending` is the picture for every slot from `slot` up to `upTo` (exclusive): convert once, copy after.
      const last = Math.min(upTo, job.frames);
      if (slot >= last || !out || !convert) return;
      const bytes = outWidth * outHeight * 3;
      convert(pending, slot);
      for (let k = slot + 1; k < last; k++) out.copyWithin(k * bytes, slot * bytes, (slot + 1) * bytes);
      slot = last;
      if (slot >= job.frames) videoDone = true;
    };
    const onVideoFrame = () => {
      const ts = frame.bestEffortTimestamp !== AV_NOPTS_VALUE ? frame.bestEffortTimestamp : frame.pts;
      const t = seconds(ts, videoTime) - origin;
      if (t < -1e-9) return; // before the window: ffmpeg's accurate seek drops it
      if (t >= limit) {
        // The stream goes on past the window: the last picture before it fills the remaining slots.
        if (hasPending) emit(job.frames);
        hasPending = false;
        videoDone = true;
        return;
      }
      if (!out) {
        first = { width: frame.width, height: frame.height, format: frame.format as number };
        ({ out, outWidth, outHeight, convert } = this.converter(job, frame, rotation));
      } else if (
        frame.width !== first.width ||
        frame.height !== first.height ||
        frame.format !== first.format
      ) {
        throw new LibavError(
          `the picture of '${job.file}' changes size or format within the clip`,
          "unsupported",
        );
      }
      const s = Math.max(0, Math.ceil(t * job.rate - 1e-6)); // round=up
      if (hasPending && s > pendingSlot) emit(s);
      // start_time=0: the first picture also fills the slots before its own; a later one in the same slot wins.
      pendingSlot = hasPending ? Math.max(pendingSlot, s) : 0;
      pending.unref();
      pending.ref(frame);
      hasPending = true;
      const duration = frame.duration > 0n ? seconds(frame.duration, videoTime) : frameDuration;
      pendingEnd = t + duration;
    };

    const audioOut = as ? new Float32Array(job.samples) : undefined;
    let audioSamples = 0;
    let audioDone = !as;
    let resampler: SoftwareResampleContext | undefined;
    let audioNext = Number.NEGATIVE_INFINITY;
    /** The part of the clip's audio not written yet, as the resampler's output. */
    const audioRoom = (out: Float32Array) => [
      Buffer.from(out.buffer, out.byteOffset + audioSamples * 4, (job.samples - audioSamples) * 4),
    ];
    const onAudioFrame = () => {
      if (!audioOut) return;
      const ts = frame.pts !== AV_NOPTS_VALUE ? frame.pts : frame.bestEffortTimestamp;
      // A frame without a timestamp (some MPEG-TS audio) follows the one before it.
      const t = ts !== AV_NOPTS_VALUE ? seconds(ts, audioTime) - origin : audioNext;
      const n = frame.nbSamples;
      audioNext = t + n / frame.sampleRate;
      if (t >= job.seconds) {
        audioDone = true;
        return;
      }
      if (t + n / frame.sampleRate <= 0) return;
      resampler ??= this.resamplers.get(frame, job.sampleRate);
      const skip = Math.min(n, Math.max(0, Math.round(-t * frame.sampleRate)));
      const format = frame.format as number;
      const planes = (frame.extendedData ?? frame.data ?? []) as Buffer[];
      const step = BYTES_PER_SAMPLE[format] * (isPlanar(format) ? 1 : frame.channels);
      const inputs = planes.map((p) => p.subarray(skip * step));
      const made = resampler.convertSync(audioRoom(audioOut), job.samples - audioSamples, inputs, n - skip);
      if (made < 0) throw new LibavError(`cannot resample the audio of '${job.file}'`, "invalid");
      audioSamples += made;
      if (audioSamples >= job.samples) audioDone = true;
    };

    const receive = (ctx: CodecContext, onFrame: () => void) => {
      while (ctx.receiveFrameSync(frame) >= 0) {
        onFrame();
        frame.unref();
      }
    };
    while (!(videoDone && audioDone)) {
      if (input.fmt.readFrameSync(packet) < 0) break; // end of file (or a read error: keep what was decoded)
      const stream = packet.streamIndex;
      if (videoDone && (stream === videoIndex || stream === audioIndex) && packet.pts !== AV_NOPTS_VALUE) {
        // With the pictures done, a packet well past the window ends the audio too: a track that stopped early or
        // has a gap must not make us read the rest of the file.
        if (seconds(packet.pts, stream === audioIndex ? audioTime : videoTime) - origin > limit + 1)
          audioDone = true;
      }
      if (stream === videoIndex && !videoDone) {
        // A damaged packet is skipped, as ffmpeg does; a file with nothing decodable ends with no frames.
        if (videoCtx.sendPacketSync(packet) >= 0) receive(videoCtx, onVideoFrame);
      } else if (audioCtx && stream === audioIndex && !audioDone) {
        if (audioCtx.sendPacketSync(packet) >= 0) receive(audioCtx, onAudioFrame);
      }
      packet.unref();
    }
    if (!videoDone) {
      videoCtx.sendPacketSync(null); // drain the frames the decoder still holds (B-frame reordering)
      receive(videoCtx, onVideoFrame);
    }
    // End of file: as the fps filter at end of stream, slots up to the end of the last picture's display time.
    if (!videoDone && hasPending) emit(Math.ceil(pendingEnd * job.rate - 1e-6));
    if (resampler && audioOut && audioSamples < job.samples) {
      const room = job.samples - audioSamples;
      audioSamples += Math.max(0, resampler.convertSync(audioRoom(audioOut), room, null, 0)); // the resampler's delay
    }
    return {
      frames: out ?? new Uint8Array(0),
      got: slot,
      width: outWidth,
      height: outHeight,
      audio: audioOut,
      audioSamples,
    };
  }

  /** The clip's output buffer and the function that writes output frame `index` from a decoded picture. */
  private converter(
    job: LibavDecodeJob,
    first: Frame,
    rotation: number,
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
    const out = new Uint8Array(job.frames * frameBytes);
    const target = (index: number) => [
      Buffer.from(out.buffer, out.byteOffset + index * frameBytes, frameBytes),
    ];
    let write: (planes: Buffer[], strides: number[], index: number) => void;
    if (!g) {
      // No crop: one call from the upright planes to the scaled RGB picture (ffmpeg's single scale).
      write = (planes, strides, index) =>
        this.scalers
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
        this.scalers
          .get(displayWidth, displayHeight, format, size.width, size.height, format)
          .scaleSync(planes, strides, 0, displayHeight, picture.planes, picture.strides);
        this.scalers
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
