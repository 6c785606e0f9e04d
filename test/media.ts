/**
 * Test helper: makes small media files with ffmpeg's lavfi sources (testsrc2, sine, geq) in temp dirs, plus the
 * broken kinds (truncated, garbage, a hanging fake ffmpeg) that the error paths need. Shared by several test files.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMediaTool } from "../media/process.js";

export interface MediaSpec {
  width?: number;
  height?: number;
  /** Length in seconds. */
  seconds?: number;
  fps?: number;
  /** Audio track: sample rate in Hz (sine at `toneHz`), or false for a file without audio. */
  audioRate?: number | false;
  toneHz?: number;
  /**
   * "sine": a tone at `toneHz` (AAC). "ramp": a sample's value is its time / 16 s, stored as 16-bit PCM (needs
   * ext "mkv"), so a decoded sample says which instant it came from.
   */
  audio?: "sine" | "ramp";
  /** Display rotation written as container metadata (the pixels stay as coded). */
  rotate?: 0 | 90 | 180 | 270;
  /**
   * "testsrc2": the moving test pattern. "frame-code": flat grey frames whose luma is 16 + 4 * frame number, so a decoded
   * frame tells which source frame it was (lossless H.264). Frames wrap after 48.
   */
  pattern?: "testsrc2" | "frame-code";
  /** Drops frames 20..39 (and every third after 60) to make a variable frame rate file. */
  variableFrameRate?: boolean;
  /** Keyframe interval in frames. */
  gop?: number;
  /** Container by extension. */
  ext?: "mp4" | "mkv";
}

/** A fresh temp dir; call `removeDir` when done. */
export function makeTempDir(prefix = "vatt-media-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Encodes one file as described and returns its path. */
export async function makeMedia(dir: string, name: string, spec: MediaSpec = {}): Promise<string> {
  const {
    width = 160,
    height = 120,
    seconds = 4,
    fps = 25,
    audioRate = 48000,
    toneHz = 440,
    rotate = 0,
  } = spec;
  const ext = spec.ext ?? "mp4";
  const file = join(dir, `${name}.${ext}`);
  const encoded = rotate ? join(dir, `${name}.unrotated.${ext}`) : file;
  // Odd sizes need 4:4:4 (4:2:0 rounds them down to even) and a source made at an even size, then scaled.
  const odd = width % 2 === 1 || height % 2 === 1;
  const pixelFormat = odd ? "yuv444p" : "yuv420p";
  const [srcW, srcH] = [width + (width % 2), height + (height % 2)];
  const video =
    spec.pattern === "frame-code"
      ? `nullsrc=size=${srcW}x${srcH}:rate=${fps}:duration=${seconds},format=yuv420p,geq=lum='16+4*mod(N,48)':cb=128:cr=128`
      : `testsrc2=size=${srcW}x${srcH}:rate=${fps}:duration=${seconds}`;
  const args = ["-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", video];
  if (audioRate !== false) {
    const tone =
      spec.audio === "ramp"
        ? `aevalsrc='t/16':s=${audioRate}:d=${seconds}`
        : `sine=frequency=${toneHz}:sample_rate=${audioRate}:duration=${seconds}`;
    args.push("-f", "lavfi", "-i", tone);
  }
  const filters: string[] = [];
  if (odd) filters.push(`scale=${width}:${height}`);
  if (spec.variableFrameRate) filters.push("select='not(between(n\\,20\\,39))*(lt(n\\,60)+not(mod(n\\,3)))'");
  if (filters.length > 0) args.push("-vf", filters.join(","));
  if (spec.variableFrameRate) args.push("-vsync", "vfr");
  args.push("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pixelFormat, "-g", String(spec.gop ?? 30));
  if (spec.pattern === "frame-code") args.push("-qp", "0");
  if (audioRate !== false) {
    args.push("-c:a", spec.audio === "ramp" ? "pcm_s16le" : "aac", "-ar", String(audioRate));
  }
  args.push(encoded);
  await runMediaTool("ffmpeg", args, { timeoutMs: 60_000 });
  if (rotate) {
    // Re-encoding drops a rotate tag, so it is set on a stream copy.
    await runMediaTool(
      "ffmpeg",
      ["-y", "-loglevel", "error", "-i", encoded, "-c", "copy", "-metadata:s:v:0", `rotate=${rotate}`, file],
      { timeoutMs: 30_000 },
    );
    await rm(encoded, { force: true });
  }
  return file;
}

/** Writes the first `fraction` of `src` to `dest`: a file cut off mid-download. */
export async function truncateMedia(src: string, dest: string, fraction = 0.5): Promise<string> {
  const bytes = await readFile(src);
  await writeFile(dest, bytes.subarray(0, Math.floor(bytes.length * fraction)));
  return dest;
}

/** Writes bytes that no demuxer recognises, under a media-looking name. */
export async function makeGarbage(dest: string, bytes = 4096): Promise<string> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 131 + 17) & 0xff;
  await writeFile(dest, data);
  return dest;
}

/** A fake ffmpeg that never finishes: point FFMPEG_PATH at it to test time limits. */
export async function makeHangingFfmpeg(dir: string): Promise<string> {
  const script = join(dir, "hanging-ffmpeg.sh");
  await writeFile(script, "#!/bin/sh\nexec sleep 600\n");
  await chmod(script, 0o755);
  return script;
}

/** Direct children of `parent` (read from /proc/<pid>/stat), zombies included: a zombie was never waited for. */
export async function childProcesses(
  parent = process.pid,
): Promise<{ pid: number; name: string; state: string }[]> {
  const found: { pid: number; name: string; state: string }[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // Format: pid (comm) state ppid ...; comm may hold spaces or parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const [state, ppid] = stat
      .slice(close + 2)
      .split(" ")
      .slice(0, 2);
    if (Number(ppid) === parent) found.push({ pid: Number(entry), name, state });
  }
  return found;
}
