/**
 * The records of a synthetic downstream dataset (datasets/synth-downstream.ts) before anything is written - its
 * ground-truth items and the media jobs that make its files - and the writing of one media file from its scene:
 * frames and sound rendered in code (datasets/synth-scenes.ts), then AVI (XVID + MP3, as UCF101 and HMDB51 ship),
 * MP4 (H.264 + AAC) via ffmpeg, 16-bit PCM WAV or JPEG (sharp) written here.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import sharp from "sharp";
import type { Random } from "../core/random.js";
import { runMediaTool } from "../media/ffmpeg.js";
import { renderSceneAudio, renderSceneBackground, renderSceneFrame, type Scene } from "./synth-scenes.js";

/** One media file of the ground truth. */
export interface DownstreamItem {
  /** Path relative to the dataset folder. */
  file: string;
  /** Class index (classification kinds). */
  label?: number;
  /** Concepts shown (indices into CONCEPTS): the class's pair, or what a retrieval video shows. */
  concepts: number[];
  duration?: number;
  /** UCF101 group and clip (1-based), HMDB51 source and split flags, ESC-50 fold, images split. */
  group?: number;
  clip?: number;
  source?: number;
  splits?: number[];
  fold?: number;
  split?: "train" | "val";
  /** Retrieval: the video id, its sentence(s) with their times. */
  id?: string;
  sentences?: { start: number; end: number; text: string; concepts: number[] }[];
}

/** What one media file needs to be written: its scene and how to encode it. */
export type MediaJob =
  | { type: "video"; container: "avi" | "mp4"; path: string; scene: Scene; duration: number; rng: Random }
  | { type: "wav"; path: string; scene: Scene; duration: number; rng: Random }
  | { type: "jpeg"; path: string; scene: Scene; time: number };

export interface MediaSizes {
  width: number;
  height: number;
  fps: number;
}

/** Everything a dataset is before anything is written: classes, ground truth, media to make, text files. */
export interface DownstreamLayout {
  classes: { name: string; concepts: number[] }[];
  items: DownstreamItem[];
  jobs: MediaJob[];
  /** Path relative to the dataset folder -> content. */
  texts: Record<string, string>;
}

/** 16-bit PCM WAV bytes of mono float samples in [-1, 1]. */
export function wavBytes(samples: Float32Array, sampleRate: number): Uint8Array {
  const bytes = new Uint8Array(44 + samples.length * 2);
  const view = new DataView(bytes.buffer);
  const ascii = (offset: number, s: string) => {
    for (let i = 0; i < s.length; i++) bytes[offset + i] = s.charCodeAt(i);
  };
  ascii(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    view.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, samples[i])) * 32767), true);
  }
  return bytes;
}

const SAMPLE_RATE = 44100;

async function* sceneFrames(scene: Scene, duration: number, sizes: MediaSizes): AsyncGenerator<Uint8Array> {
  const { width, height, fps } = sizes;
  const frameBytes = width * height * 3;
  const background = renderSceneBackground(scene, width, height);
  const total = Math.round(duration * fps);
  const perChunk = 8;
  for (let f0 = 0; f0 < total; f0 += perChunk) {
    const n = Math.min(perChunk, total - f0);
    const chunk = new Uint8Array(frameBytes * n);
    for (let k = 0; k < n; k++) {
      renderSceneFrame(
        chunk.subarray(k * frameBytes, (k + 1) * frameBytes),
        background,
        width,
        height,
        scene,
        (f0 + k) / fps,
      );
    }
    yield chunk;
  }
}

/** ffmpeg output arguments per container: UCF101/HMDB51's MPEG-4 part 2 ("XVID") + MP3 in AVI, or H.264 + AAC in MP4. */
function codecArgs(container: "avi" | "mp4", fps: number): string[] {
  return container === "avi"
    ? [
        "-c:v",
        "mpeg4",
        "-vtag",
        "XVID",
        "-q:v",
        "5",
        "-g",
        String(fps),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "64k",
      ]
    : [
        ...[
          "-c:v",
          "libx264",
          "-preset",
          "ultrafast",
          "-crf",
          "23",
          "-pix_fmt",
          "yuv420p",
          "-g",
          String(fps),
        ],
        ...["-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"],
      ];
}

/** Writes one media file under a temporary name, then renames it. */
export async function writeMedia(job: MediaJob, sizes: MediaSizes, scratch: string): Promise<void> {
  await mkdir(dirname(job.path), { recursive: true });
  const ext = job.path.slice(job.path.lastIndexOf("."));
  const partial = `${job.path}.partial${ext}`;
  try {
    if (job.type === "jpeg") {
      const frame = new Uint8Array(sizes.width * sizes.height * 3);
      const background = renderSceneBackground(job.scene, sizes.width, sizes.height);
      renderSceneFrame(frame, background, sizes.width, sizes.height, job.scene, job.time);
      await sharp(frame, { raw: { width: sizes.width, height: sizes.height, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(partial);
    } else if (job.type === "wav") {
      await writeFile(
        partial,
        wavBytes(renderSceneAudio(job.scene, job.duration, SAMPLE_RATE, job.rng), SAMPLE_RATE),
      );
    } else {
      const audio = renderSceneAudio(job.scene, job.duration, SAMPLE_RATE, job.rng.fork("audio"));
      const audioPath = join(scratch, `${Math.floor(job.rng.next() * 1e12)}.f32`);
      await writeFile(audioPath, new Uint8Array(audio.buffer, audio.byteOffset, audio.byteLength));
      try {
        await runMediaTool(
          "ffmpeg",
          [
            ...["-hide_banner", "-loglevel", "error", "-y"],
            ...[
              "-f",
              "rawvideo",
              "-pix_fmt",
              "rgb24",
              "-s",
              `${sizes.width}x${sizes.height}`,
              "-r",
              String(sizes.fps),
            ],
            ...["-i", "pipe:0"],
            ...["-f", "f32le", "-ar", String(SAMPLE_RATE), "-ac", "1", "-i", audioPath],
            ...codecArgs(job.container, sizes.fps),
            ...["-shortest", partial],
          ],
          { file: job.path, stdin: sceneFrames(job.scene, job.duration, sizes), timeoutMs: 600_000 },
        );
      } finally {
        await rm(audioPath, { force: true });
      }
    }
    await rename(partial, job.path);
  } finally {
    await rm(partial, { force: true });
  }
}
