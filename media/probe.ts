/**
 * `probe(file)`: what a media file holds, read with ffprobe, as one typed record.
 */
import { access, constants, stat } from "node:fs/promises";
import { runMediaToolCaptured } from "./capture.js";
import { ffmpegReason, MediaError } from "./process.js";

export interface MediaInfo {
  file: string;
  /** Container duration in seconds (the longest stream when the container does not say). */
  duration: number;
  formatName: string;
  hasVideo: boolean;
  hasAudio: boolean;
  videoCodec?: string;
  audioCodec?: string;
  /** Coded width and height, before rotation. */
  width: number;
  height: number;
  /** Display rotation in degrees (0, 90, 180, 270) from the rotate tag or the display matrix. */
  rotation: number;
  /** Average frame rate (frames / duration); differs from `realFrameRate` for variable frame rate video. */
  avgFrameRate: number;
  /** ffprobe's r_frame_rate: the lowest rate that represents all timestamps. */
  realFrameRate: number;
  /** Frame count when the container records it. */
  frameCount?: number;
  audioSampleRate: number;
  audioChannels: number;
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  sample_rate?: string;
  channels?: number;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
  disposition?: { attached_pic?: number };
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { duration?: string; format_name?: string };
}

/** "30000/1001" -> 29.97; "0/0" or garbage -> 0. */
export function parseRate(rate: string | undefined): number {
  if (!rate) return 0;
  const [num, den] = rate.split("/").map(Number);
  if (den === undefined) return Number.isFinite(num) ? num : 0;
  return den > 0 && Number.isFinite(num) ? num / den : 0;
}

function rotationOf(stream: FfprobeStream): number {
  const tag = stream.tags?.rotate;
  let degrees = tag !== undefined ? Number(tag) : 0;
  const matrix = stream.side_data_list?.find((s) => s.rotation !== undefined);
  if (!tag && matrix?.rotation !== undefined) degrees = -matrix.rotation; // display matrix turns the other way
  const normalised = (((Math.round(degrees / 90) * 90) % 360) + 360) % 360;
  return Number.isFinite(normalised) ? normalised : 0;
}

/** Reads the facts of one media file. Errors name the file and carry ffprobe's own message. */
export async function probe(
  file: string,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<MediaInfo> {
  try {
    await access(file, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : `cannot read it (${code})`;
    throw new MediaError(`cannot probe '${file}': ${why}`, file, "missing");
  }
  if ((await stat(file)).isDirectory()) {
    throw new MediaError(`cannot probe '${file}': it is a directory, not a media file`, file, "invalid");
  }
  let out: Buffer;
  try {
    // Captured like a decode, so on Linux the spawner starts it: a training run probes every file it reads (the
    // filter-graph crop needs the frame size), and a direct spawn from a process of a few hundred MB costs its
    // main thread ~10 ms each (measured: 293 probes, 2.6 s of the main thread).
    out = await runMediaToolCaptured(
      "ffprobe",
      ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", file],
      0,
      { file, timeoutMs: opts.timeoutMs ?? 30_000, signal: opts.signal },
      async ([stdout]) => {
        const bytes = Buffer.allocUnsafe(stdout.size);
        await stdout.readInto([bytes], 0);
        return bytes;
      },
    );
  } catch (err) {
    if (err instanceof MediaError && err.kind !== "timeout" && err.kind !== "cancelled") {
      throw new MediaError(
        `cannot probe '${file}': ${ffmpegReason(err.stderr).replace(`${file}: `, "")}`,
        file,
        err.kind === "failed" ? "invalid" : err.kind,
        err.stderr,
      );
    }
    throw err;
  }
  const parsed = JSON.parse(out.toString("utf8")) as FfprobeOutput;
  const streams = parsed.streams ?? [];
  const video = streams.find((s) => s.codec_type === "video" && !s.disposition?.attached_pic);
  const audio = streams.find((s) => s.codec_type === "audio");
  if (!video && !audio) {
    throw new MediaError(`cannot probe '${file}': it has no video or audio stream`, file, "invalid");
  }
  const durations = [parsed.format?.duration, video?.duration, audio?.duration]
    .map((d) => Number(d))
    .filter((d) => Number.isFinite(d) && d > 0);
  const frames = Number(video?.nb_frames);
  return {
    file,
    duration:
      Number(parsed.format?.duration) > 0 ? Number(parsed.format?.duration) : Math.max(0, ...durations),
    formatName: parsed.format?.format_name ?? "",
    hasVideo: video !== undefined,
    hasAudio: audio !== undefined,
    videoCodec: video?.codec_name,
    audioCodec: audio?.codec_name,
    width: video?.width ?? 0,
    height: video?.height ?? 0,
    rotation: video ? rotationOf(video) : 0,
    avgFrameRate: parseRate(video?.avg_frame_rate),
    realFrameRate: parseRate(video?.r_frame_rate),
    frameCount: Number.isFinite(frames) && frames > 0 ? frames : undefined,
    audioSampleRate: Number(audio?.sample_rate ?? 0),
    audioChannels: audio?.channels ?? 0,
  };
}
