/**
 * Decoding inside this process with FFmpeg's own libraries (libavformat, libavcodec, libswscale, libswresample),
 * through node-av's prebuilt N-API binding: the code the worker threads of media/libav-pool.ts run.
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
 * Everything here is synchronous: it runs in a worker thread, never on the main thread. Opening and probing are in
 * media/libav-input.ts, the conversion of frames to the clip's buffers in media/libav-convert.ts.
 */
import { AV_NOPTS_VALUE, AVSEEK_FLAG_BACKWARD } from "node-av/constants";
import { type CodecContext, Frame, Packet, type SoftwareResampleContext, type Stream } from "node-av/lib";
import {
  BYTES_PER_SAMPLE,
  isPlanar,
  pictureConverter,
  ResamplerCache,
  ScalerCache,
} from "./libav-convert.js";
import {
  Input,
  type LibavDecodeJob,
  type LibavDecodeResult,
  LibavError,
  rotationOf,
  seconds,
} from "./libav-input.js";

/**
 * Per-worker state: conversion contexts kept from clip to clip, and with `reuseBuffers` the clip's output buffers
 * too: then a result is valid until the next decode only. A decoding process copies every result out (through a
 * file, core/pool-files.ts), so fresh buffers would only cost it their page faults: ~100 ms per 11 MB clip on a
 * loaded 2-core VM, its largest cost after the decode itself. A thread hands its buffers over, so needs new ones.
 */
export class LibavDecoder {
  private readonly scalers = new ScalerCache();
  private readonly resamplers = new ResamplerCache();
  private readonly frameBuffer: (bytes: number) => Uint8Array;
  private readonly audioBuffer: (bytes: number) => Uint8Array;

  constructor(opts: { reuseBuffers?: boolean } = {}) {
    const fresh = (bytes: number) => new Uint8Array(bytes);
    this.frameBuffer = opts.reuseBuffers ? reusedBuffer() : fresh;
    this.audioBuffer = opts.reuseBuffers ? reusedBuffer() : fresh;
  }

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
        ({ out, outWidth, outHeight, convert } = pictureConverter(
          job,
          frame,
          rotation,
          this.scalers,
          this.frameBuffer,
        ));
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

    const audioOut = as
      ? new Float32Array(this.audioBuffer(job.samples * 4).buffer, 0, job.samples)
      : undefined;
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
}

/** Views of one buffer, grown when a larger one is asked for: each call's view overwrites the last one's bytes. */
function reusedBuffer(): (bytes: number) => Uint8Array {
  let buffer = new ArrayBuffer(0);
  return (bytes) => {
    if (buffer.byteLength < bytes) buffer = new ArrayBuffer(bytes);
    return new Uint8Array(buffer, 0, bytes);
  };
}
