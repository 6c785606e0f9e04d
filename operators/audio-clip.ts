/**
 * Audio-only decode: a window of a sound file (ESC-50's WAVs have no picture, which the clip decoder requires) as
 * float32 mono samples in [-1, 1] at the model's rate, by one ffmpeg process. A file shorter than the window
 * LOOPS, as the clip decoder loops a short video (DMVR's behaviour for short test clips).
 */
import type { ClipRef } from "../core/records.js";
import { MediaError, runMediaTool } from "../media/process.js";

export interface AudioClipOptions {
  /** Samples per clip. */
  samples: number;
  sampleRate: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The samples of [start, start + samples / rate) of `ref.path` (looped when the file ends sooner). */
export async function decodeAudioClip(
  ref: ClipRef,
  start: number,
  o: AudioClipOptions,
): Promise<Float32Array> {
  const seconds = o.samples / o.sampleRate;
  const args = ["-nostdin", "-hide_banner", "-loglevel", "error", "-ss", Math.max(0, start).toFixed(6)];
  args.push(
    "-t",
    seconds.toFixed(6),
    "-i",
    ref.path,
    "-map",
    "0:a:0",
    "-ac",
    "1",
    "-ar",
    String(o.sampleRate),
  );
  args.push("-c:a", "pcm_f32le", "-f", "f32le", "pipe:1");
  const bytes = await runMediaTool("ffmpeg", args, {
    file: ref.path,
    timeoutMs: o.timeoutMs ?? 30_000,
    signal: o.signal,
  });
  const got = Math.min(o.samples, bytes.length >> 2);
  if (got === 0) {
    throw new MediaError(
      `decode of '${ref.path}' at ${start.toFixed(3)} s gave no audio (no audio stream, or the file ends before the ` +
        "window): check the file with 'vatt probe'",
      ref.path,
      "invalid",
    );
  }
  const decoded = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + got * 4));
  const out = new Float32Array(o.samples);
  for (let i = 0; i < o.samples; i++) out[i] = Math.max(-1, Math.min(1, decoded[i % got]));
  return out;
}
