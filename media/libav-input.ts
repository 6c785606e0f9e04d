/**
 * Opening a file with FFmpeg's libraries (node-av): the input and its chosen streams, the libav probe, and the job,
 * result and error records of the in-process decoder (media/libav.ts).
 */
import {
  AV_DISPOSITION_ATTACHED_PIC,
  AV_LOG_QUIET,
  AV_NOPTS_VALUE,
  AV_PKT_DATA_DISPLAYMATRIX,
  AVERROR_ENOENT,
  AVMEDIA_TYPE_AUDIO,
  AVMEDIA_TYPE_VIDEO,
} from "node-av/constants";
import { Codec, CodecContext, FFmpegError, FormatContext, Log, type Stream } from "node-av/lib";
import type { FilterGeometry } from "../core/geometry.js";
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

export function check(code: number, what: string, file: string): void {
  if (code >= 0) return;
  const kind = code === AVERROR_ENOENT ? "missing" : "invalid";
  throw new LibavError(`${what} '${file}': ${FFmpegError.strerror(code)}`, kind);
}

export function seconds(ts: bigint, tb: { num: number; den: number }): number {
  return (Number(ts) * tb.num) / tb.den;
}

/** Rotation in degrees (0, 90, 180, 270) as ffprobe reports it turned around: the display matrix, else `rotate`. */
export function rotationOf(stream: Stream): number {
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
export class Input {
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
