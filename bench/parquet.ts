/**
 * `npm run bench -- parquet [--json]`: training input from `vatt prepare` shards against the raw-video path, the
 * prepare throughput, and the peak RSS of writing a shard of over 1 GB.
 *
 * 1. Sources: 640x360 H.264 30 fps (x264 veryfast, 2 s GOP) + AAC 44.1 kHz (testsrc2), listed in a manifest, one
 *    row per video.
 * 2. Prepare: the sources -> 2 shards (10 fps, short side 256, JPEG q90, int16 48 kHz): clips/s counts 3.2 s clips'
 *    worth of media decoded per second of wall time.
 * 3. Training input, the same Examples both ways with the same augmentation (inception crop -> 224x224, flip,
 *    colour, [-1, 1], audio noise) and 2 workers: raw = seek + ffmpeg decode per clip (pipeline/stream.ts);
 *    parquet = read row groups + JPEG decode of the crop's region (libjpeg-turbo; sharp without it) in 2 worker
 *    threads (datasets/parquet.ts). ratio = parquet / raw.
 * 4. Writing RSS: a child process (a fresh RSS high-water mark) prepares one shard of over 1 GB: 180 s of noisy
 *    640x360 video stored at short side 720, JPEG q100 (~0.8 MB a frame), in 5 s manifest rows.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { orderedRefs } from "../core/order.js";
import { SkipLog } from "../core/skips.js";
import { manifest } from "../datasets/manifest.js";
import { runMediaTool } from "../media/process.js";
import { parquetExamples } from "../pipeline/parquet-examples.js";
import { prepareShards } from "../pipeline/prepare.js";
import { pretrainingExamples } from "../pipeline/stream.js";
import { processTreeCpuSeconds, round } from "./measure.js";

const WORKERS = 2;
const SOURCES = 4;
const SOURCE_SECONDS = 20;
const CLIPS_PER_VIDEO = 12;
const CLIP_SECONDS = 3.2;
/**
 * x264 preset of the sources, as in bench/pipeline.ts: "veryfast" keeps CABAC, B-frames and deblocking, as real
 * (YouTube) streams have; "ultrafast" turns them off and makes decoding unusually cheap (measured: ratio 2.9 there).
 */
const SOURCE_PRESET = "veryfast";

const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

async function encode(
  file: string,
  video: string,
  seconds: number,
  extra: string[] = [],
  preset = "ultrafast",
): Promise<void> {
  await runMediaTool(
    "ffmpeg",
    [
      ...["-y", "-loglevel", "error", "-f", "lavfi", "-i", video, "-f", "lavfi"],
      ...["-i", `sine=frequency=440:sample_rate=44100:duration=${seconds}`, ...extra],
      ...["-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-g", "60", "-c:a", "aac", file],
    ],
    { timeoutMs: 300_000 },
  );
}

/** Writes the sources and a manifest listing them (rows of `rowSeconds`, `copies` times over). */
async function writeManifest(dir: string, files: string[], seconds: number, rowSeconds: number, copies = 1) {
  const rows = ["path,start,end,id,text"];
  for (let c = 0; c < copies; c++) {
    files.forEach((f, i) => {
      for (let t = 0; t < seconds; t += rowSeconds) {
        rows.push(`${f},${t},${t + rowSeconds},v${i}c${c}t${t},a person slices a tomato`);
      }
    });
  }
  const path = join(dir, "manifest.csv");
  await writeFile(path, `${rows.join("\n")}\n`);
  return path;
}

async function timed(
  run: () => Promise<number>,
): Promise<{ items: number; seconds: number; perSecond: number; cpuSecondsPerItem: number }> {
  const started = process.hrtime.bigint();
  const cpu0 = await processTreeCpuSeconds();
  const items = await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = (await processTreeCpuSeconds()) - cpu0;
  return {
    items,
    seconds: round(seconds),
    perSecond: round(items / seconds),
    cpuSecondsPerItem: round(cpu / items),
  };
}

async function drain(examples: AsyncIterable<{ video: Float32Array }>): Promise<number> {
  let n = 0;
  for await (const e of examples) if (e.video.length > 0) n += 1;
  return n;
}

/** Prepares one big shard in a child process and returns its peak RSS and size. */
function writeInChild(
  dataset: string,
  out: string,
): Promise<{ maxRssMB: number; bytes: number; seconds: number }> {
  const prepare = fileURLToPath(new URL("../pipeline/prepare.js", import.meta.url));
  const script = `
    const { prepareShards } = await import(${JSON.stringify(prepare)});
    const t = process.hrtime.bigint();
    const r = await prepareShards({ dataset: ${JSON.stringify(dataset)}, kind: "manifest", out: ${JSON.stringify(out)},
      numShards: 1, shortSide: 720, jpegQuality: 100 });
    console.log(JSON.stringify({ maxRssMB: process.resourceUsage().maxRSS / 1024, bytes: r.shards[0].bytes,
      seconds: Number(process.hrtime.bigint() - t) / 1e9 }));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split("\n").at(-1)!))
        : reject(new Error(`writer exited ${code}`)),
    );
  });
}

export async function benchParquet(opts: { json: boolean }): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), "vatt-bench-parquet-"));
  const note = (s: string) => process.stderr.write(`bench parquet: ${s}\n`);
  try {
    const files: string[] = [];
    for (let i = 0; i < SOURCES; i++) {
      files.push(join(dir, `src${i}.mp4`));
      await encode(
        files[i],
        `testsrc2=size=640x360:rate=30:duration=${SOURCE_SECONDS}`,
        SOURCE_SECONDS,
        [],
        SOURCE_PRESET,
      );
    }
    const list = await writeManifest(dir, files, SOURCE_SECONDS, SOURCE_SECONDS);
    note("sources written; preparing");

    const shards = join(dir, "shards");
    const prep = await timed(async () => {
      const r = await prepareShards({
        dataset: list,
        kind: "manifest",
        out: shards,
        numShards: 2,
        concurrency: WORKERS,
      });
      return r.shards.reduce((n, s) => n + s.rows, 0);
    });
    const mediaSeconds = SOURCES * SOURCE_SECONDS;

    const augment = {}; // the defaults: inception crop to 224x224, flip 0.5, colour 0.8, audio noise
    const raw = () =>
      timed(() => {
        const skips = new SkipLog();
        const source = manifest({ path: list, skips });
        const refs = orderedRefs(source, { seed: 1, epochs: CLIPS_PER_VIDEO });
        return drain(pretrainingExamples(refs, { seed: 1, concurrency: WORKERS, buffer: 2, augment }));
      });
    const fromParquet = () =>
      timed(() =>
        drain(
          parquetExamples({
            dir: shards,
            seed: 1,
            clipsPerRow: CLIPS_PER_VIDEO,
            window: "random",
            concurrency: WORKERS,
            augment,
          }),
        ),
      );
    note("training input: raw vs parquet");
    await fromParquet(); // warm the JIT and the page cache once, then alternate
    const raw1 = await raw();
    const pq1 = await fromParquet();
    const raw2 = await raw();
    const pq2 = await fromParquet();
    const rawRate = (raw1.perSecond + raw2.perSecond) / 2;
    const pqRate = (pq1.perSecond + pq2.perSecond) / 2;
    const trainingRssMB = mb(process.resourceUsage().maxRSS * 1024);

    note("writing a >1 GB shard in a child process");
    const big = join(dir, "big.mp4");
    const bigSeconds = 30;
    await encode(big, `testsrc2=size=640x360:rate=10:duration=${bigSeconds}`, bigSeconds, [
      "-vf",
      "noise=alls=20:allf=t",
    ]);
    const bigList = await writeManifest(dir, [big], bigSeconds, 5, 6);
    const written = await writeInChild(bigList, join(dir, "big-shard"));

    const result = {
      name: "parquet",
      workers: WORKERS,
      source: `${SOURCES} x ${SOURCE_SECONDS} s of 640x360 H.264 30 fps (x264 ${SOURCE_PRESET}) + AAC 44.1 kHz`,
      clip: "32 frames @ 10 fps, short side 256 -> 224x224 inception crop + flip + colour, 153600 samples @ 48 kHz",
      parquetExamplesPerSecond: round(pqRate),
      rawExamplesPerSecond: round(rawRate),
      ratio: round(pqRate / rawRate),
      // CPU seconds per example (children included): the ratio other load on the machine does not distort.
      parquetCpuSecondsPerExample: round((pq1.cpuSecondsPerItem + pq2.cpuSecondsPerItem) / 2),
      rawCpuSecondsPerExample: round((raw1.cpuSecondsPerItem + raw2.cpuSecondsPerItem) / 2),
      cpuRatio: round(
        (raw1.cpuSecondsPerItem + raw2.cpuSecondsPerItem) / (pq1.cpuSecondsPerItem + pq2.cpuSecondsPerItem),
      ),
      prepareClipsPerSecond: round(mediaSeconds / CLIP_SECONDS / prep.seconds),
      prepareVideosPerSecond: round(prep.items / prep.seconds),
      prepareRealtimeFactor: round(mediaSeconds / prep.seconds, 1),
      peakRssMB: trainingRssMB,
      writeShardMB: mb(written.bytes),
      writePeakRssMB: round(written.maxRssMB, 1),
      writeSeconds: round(written.seconds, 1),
      writeSettings:
        "one shard, 36 x 5 s rows of noisy video at short side 720, JPEG q100, row groups 64 MiB",
      runs: { raw: [raw1, raw2], parquet: [pq1, pq2], prepare: prep },
    };
    if (!opts.json) {
      note(
        `parquet ${result.parquetExamplesPerSecond} ex/s vs raw ${result.rawExamplesPerSecond} ex/s ` +
          `(ratio ${result.ratio}); prepare ${result.prepareClipsPerSecond} clips/s; writing a ` +
          `${result.writeShardMB} MB shard peaked at ${result.writePeakRssMB} MB RSS`,
      );
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  benchParquet({ json: process.argv.includes("--json") }).then((r) =>
    console.log(JSON.stringify(r, null, 2)),
  );
}
