/**
 * `probeCached`: `probe` remembered per file while it stays the same, for decoders that need a file's size or
 * duration before each clip of it.
 */
import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { type Isolation, libavPool } from "./libav-pool.js";
import { type MediaInfo, probe as probeFile } from "./probe.js";

/** Probe results by path, checked against the file's size and mtime; the oldest entries go past `PROBE_CACHE_SIZE`. */
const probeCache = new Map<string, { stamp: string; info: MediaInfo }>();
const PROBE_CACHE_SIZE = 4096;

/** `probe`, remembered per file while its size and modification time stay the same (a stat instead of ffprobe). */
export async function probeCached(
  file: string,
  opts: {
    timeoutMs?: number;
    signal?: AbortSignal;
    inProcess?: boolean;
    isolation?: Isolation;
    stats?: Stats;
  } = {},
): Promise<MediaInfo> {
  const probe = opts.inProcess
    ? (f: string) => libavPool(undefined, opts.isolation).probe(f, opts)
    : (f: string) => probeFile(f, opts);
  let stamp: string;
  try {
    const st = opts.stats ?? (await stat(file));
    stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return probe(file); // its own error names the file and the reason
  }
  const known = probeCache.get(file);
  if (known && known.stamp === stamp) {
    probeCache.delete(file); // most recently used goes last
    probeCache.set(file, known);
    return known.info;
  }
  const info = await probe(file);
  probeCache.set(file, { stamp, info });
  if (probeCache.size > PROBE_CACHE_SIZE) probeCache.delete(probeCache.keys().next().value as string);
  return info;
}
