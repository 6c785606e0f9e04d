/**
 * Bench: stream-parsing a HowTo100M-sized caption.json with bounded memory.
 *
 * Writes a synthetic caption.json of `sizeMB` (default ~1 GB) into os.tmpdir() - videos of ~100 overlapping
 * captions each, as in HowTo100M - then streams it through the same path the dataset uses (byte scanner +
 * per-video JSON.parse + caption validation) and reports bytes, videos/s, MB/s and the peak RSS, which must stay
 * far below the file size. The file is deleted afterwards.
 */
import { open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCaptionEntry } from "../datasets/howto100m.js";
import { scanJsonObject } from "../datasets/json-scan.js";
import { round } from "./measure.js";

const WORDS = [
  "pour",
  "the",
  "flour",
  "into",
  "bowl",
  "and",
  "mix",
  "it",
  "well",
  "now",
  "we",
  "add",
  "some",
  "salt",
];

/** One video's caption value: `n` captions of ~6 words, 4 s long, starting every 3 s (neighbours overlap). */
function videoBody(n: number, variant: number): string {
  const start: number[] = [];
  const end: number[] = [];
  const text: string[] = [];
  for (let i = 0; i < n; i++) {
    start.push(Math.round((i * 3 + variant * 0.01) * 100) / 100);
    end.push(Math.round((i * 3 + 4 + variant * 0.01) * 100) / 100);
    text.push(Array.from({ length: 6 }, (_, w) => WORDS[(i * 7 + w * 3 + variant) % WORDS.length]).join(" "));
  }
  return JSON.stringify({ start, end, text });
}

/** Writes `{ "vid...": {...}, ... }` of about `bytes` bytes; returns the video count. Batched 8 MB writes. */
async function writeCaptionFile(path: string, bytes: number): Promise<number> {
  const bodies = Array.from({ length: 16 }, (_, v) => Buffer.from(videoBody(100, v)));
  const file = await open(path, "w");
  try {
    let written = 0;
    let videos = 0;
    let batch: Buffer[] = [Buffer.from("{")];
    let batchBytes = 1;
    while (written + batchBytes < bytes || videos === 0) {
      const key = Buffer.from(`${videos === 0 ? "" : ","}\n"v${String(videos).padStart(10, "0")}": `);
      const body = bodies[videos % bodies.length];
      batch.push(key, body);
      batchBytes += key.length + body.length;
      videos++;
      if (batchBytes >= 8 << 20) {
        await file.write(Buffer.concat(batch));
        written += batchBytes;
        batch = [];
        batchBytes = 0;
      }
    }
    batch.push(Buffer.from("\n}\n"));
    await file.write(Buffer.concat(batch));
    return videos;
  } finally {
    await file.close();
  }
}

export async function benchCaptions(opts: {
  json: boolean;
  sizeMB?: number;
}): Promise<Record<string, unknown>> {
  const sizeMB = opts.sizeMB ?? 1024;
  const path = join(tmpdir(), `vatt-bench-captions-${process.pid}.json`);
  try {
    const writeStart = performance.now();
    const written = await writeCaptionFile(path, sizeMB * 1024 * 1024);
    const writeSeconds = (performance.now() - writeStart) / 1000;
    const rssBefore = process.memoryUsage().rss;

    const t0 = performance.now();
    let videos = 0;
    let captions = 0;
    let errors = 0;
    const events = scanJsonObject(path);
    for await (const event of events) {
      if (event.kind === "error") {
        errors++;
        continue;
      }
      const entry = parseCaptionEntry(event.value);
      if ("error" in entry) errors++;
      else captions += entry.captions.length;
      videos++;
    }
    const seconds = (performance.now() - t0) / 1000;
    const bytes = (await stat(path)).size;
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    if (videos !== written || errors > 0) {
      throw new Error(`bench captions: parsed ${videos} of ${written} videos with ${errors} errors`);
    }
    const result = {
      bench: "captions",
      bytes,
      fileMB: round(bytes / 2 ** 20),
      videos,
      captions,
      seconds: round(seconds),
      videosPerSecond: Math.round(videos / seconds),
      mbPerSecond: round(bytes / 2 ** 20 / seconds),
      peakRssMB: round(peakRssBytes / 2 ** 20),
      rssBeforeParseMB: round(rssBefore / 2 ** 20),
      peakRssOverFileSize: round(peakRssBytes / bytes, 4),
      writeSeconds: round(writeSeconds),
    };
    if (!opts.json) {
      console.error(
        `captions: ${result.fileMB} MB, ${videos} videos in ${result.seconds} s ` +
          `(${result.videosPerSecond} videos/s, ${result.mbPerSecond} MB/s), peak RSS ${result.peakRssMB} MB`,
      );
    }
    return result;
  } finally {
    await rm(path, { force: true });
  }
}
