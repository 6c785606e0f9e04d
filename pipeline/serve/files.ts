/**
 * Serving files from the roots the user named (runs, index, dataset) and nothing else: a requested path is
 * decoded, must have no `.`/`..` segment, and its real path (symlinks resolved) must lie inside a root's real
 * path. Videos are served with HTTP range requests (a <video> element seeks with them); thumbnails are single
 * JPEG frames grabbed by ffmpeg at a time and cached.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, realpath, rename, stat, writeFile } from "node:fs/promises";
import { extname, isAbsolute, join, sep } from "node:path";
import { Readable } from "node:stream";
import { runMediaTool } from "../../media/process.js";

/** Splits a URL path tail into decoded segments; undefined when any is empty, `.`, `..` or holds a separator. */
export function safeSegments(tail: string): string[] | undefined {
  const segments: string[] = [];
  for (const raw of tail.split("/")) {
    if (raw === "") continue;
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (s === "." || s === ".." || s.includes("/") || s.includes("\\") || s.includes("\0")) return undefined;
    segments.push(s);
  }
  return segments;
}

/** True when `path` (already real) is `root` or inside it. */
function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The real path of `path` when it exists and lies inside one of `roots` (after resolving symlinks on both sides),
 * else undefined. Relative paths are taken against each root in turn.
 */
export async function resolveInside(roots: readonly string[], path: string): Promise<string | undefined> {
  if (path.includes("\0")) return undefined;
  for (const root of roots) {
    const realRoot = await realpath(root).catch(() => undefined);
    if (!realRoot) continue;
    const candidate = isAbsolute(path) ? path : join(root, path);
    const real = await realpath(candidate).catch(() => undefined);
    if (real && inside(realRoot, real)) return real;
  }
  return undefined;
}

const TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".svg": "image/svg+xml",
  ".mp4": "video/mp4",
  ".m4v": "video/mp4",
  ".webm": "video/webm",
  ".mkv": "video/x-matroska",
  ".mov": "video/quicktime",
  ".json": "application/json",
  ".jsonl": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

export function contentType(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
}

/** `bytes=a-b` (or `a-`, or `-n`) against a file of `size` bytes; undefined when unsatisfiable. */
export function parseRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return undefined;
  return { start, end };
}

/** A response for a whole file or, with a Range header, the bytes asked for (206). */
export async function fileResponse(path: string, rangeHeader?: string | null): Promise<Response> {
  const { size } = await stat(path);
  const headers: Record<string, string> = {
    "content-type": contentType(path),
    "accept-ranges": "bytes",
    "cache-control": "no-cache",
  };
  if (rangeHeader) {
    const range = parseRange(rangeHeader, size);
    if (!range) return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
    const body = Readable.toWeb(createReadStream(path, range)) as ReadableStream;
    return new Response(body, {
      status: 206,
      headers: {
        ...headers,
        "content-range": `bytes ${range.start}-${range.end}/${size}`,
        "content-length": String(range.end - range.start + 1),
      },
    });
  }
  const body = Readable.toWeb(createReadStream(path)) as ReadableStream;
  return new Response(body, { headers: { ...headers, "content-length": String(size) } });
}

/** Grabs the frame of `video` at `seconds` as a JPEG 320 pixels wide, cached in `cacheDir` by file, size, time. */
export async function thumbnail(cacheDir: string, video: string, seconds: number): Promise<string> {
  const s = await stat(video);
  const t = Math.max(0, Math.round(seconds * 100) / 100);
  const key = createHash("sha1").update(`${video}\0${s.size}\0${s.mtimeMs}\0${t}`).digest("hex").slice(0, 20);
  const out = join(cacheDir, `${key}.jpg`);
  if (await stat(out).catch(() => undefined)) return out;
  await mkdir(cacheDir, { recursive: true });
  const jpeg = await runMediaTool(
    "ffmpeg",
    [
      "-v",
      "error",
      "-ss",
      String(t),
      "-i",
      video,
      "-frames:v",
      "1",
      "-vf",
      "scale=320:-2",
      "-f",
      "mjpeg",
      "-",
    ],
    { file: video, timeoutMs: 20_000 },
  );
  if (jpeg.length === 0) throw new Error(`${video}: no frame at ${t} s (is the time past the end?)`);
  const partial = `${out}.${process.pid}.partial`;
  await writeFile(partial, jpeg);
  await rename(partial, out);
  return out;
}
