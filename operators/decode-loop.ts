/**
 * Completing a decoded clip: a video shorter than the window is LOOPED (frame i = frame i mod n) and so is its audio,
 * with the same period, so sound stays in sync with the picture; audio shorter than the picture is zero-padded; the
 * clip's `ref` is narrowed to the decoded window. See operators/decode.ts for why looping and not padding.
 */
import type { ClipRef, DecodedClip } from "../core/records.js";
import type { LibavDecodeResult } from "../media/libav-input.js";
import { clipSamples, clipSeconds, type DecodeOptions, effectiveFrameRate } from "./decode-options.js";

/**
 * A decode's output, already in the clip's own buffers: `frames` has room for the whole clip and holds the `got`
 * decoded frames at its start; `audio` has the clip's length and holds the first `audioSamples` decoded samples.
 * Both decoders give it.
 */
export type RawDecode = LibavDecodeResult;

/** Completes the clip in place: loops the decoded frames and audio with the same period (see the file comment). */
export function assembleClip(
  ref: ClipRef,
  raw: RawDecode,
  opts: DecodeOptions,
  start: number,
): Omit<DecodedClip, "ref"> & { ref: ClipRef } {
  const { frames, got, width, height } = raw;
  const frameBytes = width * height * 3;
  for (let i = got; i < opts.frames; i++) {
    const from = (i % got) * frameBytes;
    frames.copyWithin(i * frameBytes, from, from + frameBytes);
  }
  const samples = clipSamples(opts);
  const audio = raw.audio ?? new Float32Array(samples);
  if (raw.audio) {
    // Period of the looped picture in samples; the whole clip when nothing was looped.
    const period =
      got < opts.frames ? Math.round((got * opts.sampleRate) / effectiveFrameRate(opts)) : samples;
    const n = Math.min(raw.audioSamples, period);
    for (let j = 0; j < n; j++) {
      const v = audio[j];
      audio[j] = v > 1 ? 1 : Math.max(v, -1);
    }
    if (period > 0) {
      audio.fill(0, n, Math.min(period, samples));
      for (let j = period; j < samples; j += period) audio.copyWithin(j, 0, Math.min(period, samples - j));
    } else audio.fill(0);
  }
  return {
    ref: { ...ref, start, end: start + clipSeconds(opts) },
    frames,
    numFrames: opts.frames,
    height,
    width,
    audio,
    sampleRate: opts.sampleRate,
    audioMask: raw.audio ? 1 : 0,
    paddedFrames: Math.max(0, opts.frames - got),
  };
}
