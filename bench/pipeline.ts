/**
 * `npm run bench -- pipeline [--json]`: the full decode + augment path against ffmpeg alone doing the same decode
 * into `-f null`, on the same clips with the same parallelism (2 workers).
 *
 * Sources: 640x360 H.264 + AAC 44.1 kHz, made with ffmpeg in a temp dir. Each clip: seek, 32 frames at 10 fps,
 * short side 256, rgb24, and 3.2 s of 48 kHz mono float audio. Ours decodes with the default decoder (FFmpeg's
 * libraries in 2 worker processes here; `data.decoder: process` is one ffmpeg per clip, the reference's own
 * command) and adds the crop + bilinear resize to 224x224 + flip, colour augmentation, [-1, 1] scaling and audio
 * noise. `demo` repeats the comparison for the clip `npm start` trains on (160x120 sources, 8
 * frames, short side 80 -> 64x64, 8192 samples at 10.24 kHz). `nodeCpuMsPerClip`: this process's CPU per clip
 * (not the decoding processes').
 *
 * `isolation` compares the default path with its decoder's workers as child processes (the default: a crash costs
 * one clip) and as threads of this process, on both clips: its "ratio" is processes / threads.
 *
 * Both placements of crop/resize/flip are measured. "ratio" is the default, crop + resize + flip in ffmpeg's filter
 * graph (one ffprobe per file, cached, for the frame size; swscale's bilinear) with colour in typed arrays, against
 * ffmpeg alone doing the plain decode above. Also reported: crop in typed arrays (tf.image.resize's exact bilinear)
 * against the same reference, and the default against ffmpeg alone running its own filter graph (the crop each
 * clip gets) into the null muxer, which leaves out everything ffmpeg does for us.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FilterGeometry, scaledSize } from "../core/geometry.js";
import { randomFor } from "../core/random.js";
import type { ClipRef, DecodedClip } from "../core/records.js";
import { runMediaToolCaptured } from "../media/capture.js";
import { probe } from "../media/probe.js";
import { runMediaTool } from "../media/process.js";
import { addGaussianNoise } from "../operators/audio.js";
import { applyAugmentation, drawAugmentation } from "../operators/augment.js";
import { cropResizeColour } from "../operators/crop.js";
import { type DecodeOptions, decodeClip, defaultDecodeOptions } from "../operators/decode.js";
import { ffmpegDecodeArgs } from "../operators/decode-ffmpeg.js";
import { pretrainingExamples } from "../pipeline/stream.js";
import { round } from "./measure.js";

const WORKERS = 2;
const SOURCES = 6;
const WINDOWS_PER_SOURCE = 6;
const SOURCE_SECONDS = 12;

/** Source files: the main case's 640x360 ones, or the demo's (`vatt synth` as `npm start` makes them). */
interface SourceSpec {
  prefix: string;
  size: string;
  audioRate: number;
  preset: string;
  gop: number;
}

const MAIN_SOURCES: SourceSpec = {
  prefix: "src",
  size: "640x360",
  audioRate: 44_100,
  preset: "veryfast",
  gop: 60,
};
const DEMO_SOURCES: SourceSpec = {
  prefix: "demo",
  size: "160x120",
  audioRate: 48_000,
  preset: "ultrafast",
  gop: 30,
};

/** The demo's clip (pipeline/demo.ts, tiny preset): 8 frames at 10 fps, short side 80 -> 64x64, 8192 samples. */
const DEMO_DECODE = { frames: 8, fps: 10, shortSide: 80, sampleRate: 10_240, window: "start" } as const;
const DEMO_AUGMENT = { outHeight: 64, outWidth: 64 };

async function makeSources(dir: string, spec: SourceSpec = MAIN_SOURCES): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < SOURCES; i++) {
    const file = join(dir, `${spec.prefix}${i}.mp4`);
    await runMediaTool(
      "ffmpeg",
      [
        "-y",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        `testsrc2=size=${spec.size}:rate=30:duration=${SOURCE_SECONDS}`,
        "-f",
        "lavfi",
        "-i",
        `sine=frequency=${300 + 50 * i}:sample_rate=${spec.audioRate}:duration=${SOURCE_SECONDS}`,
        "-c:v",
        "libx264",
        "-preset",
        spec.preset,
        "-pix_fmt",
        "yuv420p",
        "-g",
        String(spec.gop),
        "-c:a",
        "aac",
        file,
      ],
      { timeoutMs: 120_000 },
    );
    files.push(file);
  }
  return files;
}

function clipRefs(files: string[], windows = WINDOWS_PER_SOURCE): ClipRef[] {
  const refs: ClipRef[] = [];
  for (let w = 0; w < windows; w++) {
    files.forEach((path, f) => {
      const index = refs.length;
      const start = 1 + ((w * 3.3) % 7.5) + f * 0.1;
      refs.push({
        source: "bench",
        id: `src${f}@${w}`,
        path,
        start,
        end: start + 3.2,
        index,
        epoch: 0,
        captions: [],
        labels: [],
      });
    });
  }
  return refs;
}

/**
 * ffmpeg alone: the decode's own arguments with both outputs sent to the null muxer (rgb24 / f32 kept). With
 * `geometry`, the filter-graph path's command for that clip (the same crop box as the stream draws).
 */
function nullDecodeArgs(
  ref: ClipRef,
  decode: Partial<DecodeOptions> = {},
  geometry?: FilterGeometry,
): string[] {
  const args = ffmpegDecodeArgs(ref.path, ref.start, { ...defaultDecodeOptions, ...decode }, true, geometry);
  return args
    .map((a) =>
      a === "pipe:1" || a === "pipe:3"
        ? "-"
        : a === "image2pipe" || a === "f32le"
          ? "null"
          : a === "ppm"
            ? "rawvideo"
            : a,
    )
    .flatMap((a, i, all) =>
      a === "rawvideo" && all[i - 1] === "-c:v" ? ["rawvideo", "-pix_fmt", "rgb24"] : [a],
    );
}

/**
 * Runs ffmpeg alone the way ours runs (media/capture.ts: by the spawner once this process is large), so both sides pay the same to
 * start a process: spawning straight from this process would cost it a fork that grows with its size.
 */
async function runAlone(args: string[], file: string): Promise<void> {
  await runMediaToolCaptured("ffmpeg", args, 0, { file, timeoutMs: 60_000 }, async () => undefined);
}

async function runPool<T>(items: T[], workers: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/** Wall time and this process's CPU per clip (user + system, all threads; not ffmpeg's, not the spawner's). */
interface Timed {
  clips: number;
  seconds: number;
  clipsPerSecond: number;
  nodeCpuMsPerClip: number;
}

async function timed(run: () => Promise<number>): Promise<Timed> {
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const clips = await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return {
    clips,
    seconds: round(seconds),
    clipsPerSecond: round(clips / seconds),
    nodeCpuMsPerClip: round((used.user + used.system) / 1000 / Math.max(1, clips), 2),
  };
}

/**
 * Per-clip main-thread cost of the augmentation stages on a real decoded clip (mean ms over `rounds` draws, after
 * warm-up): crop = crop + resize + flip + [-1, 1] without colour; fusedVideo = the kernel of `cropIn: arrays`
 * (crop + resize + flip + colour, 80% of clips drawn for colour); colourOnly = the kernel of the default path, where
 * ffmpeg already cropped and resized (224x224 in, colour + flip + [-1, 1]); audio = the Gaussian noise; augmentClip
 * = all of `cropIn: arrays` for one Example (allocation included).
 */
function microBench(clip: DecodedClip, rounds = 20): Record<string, number> {
  const sums = { crop: 0, fusedVideo: 0, colourOnly: 0, audio: 0, augmentClip: 0 };
  const { numFrames, height, width } = clip;
  // 224x224 frames as ffmpeg's filter graph hands them over (the top-left corner of each decoded frame).
  const cropped = new Uint8Array(numFrames * 224 * 224 * 3);
  for (let t = 0; t < numFrames; t++) {
    for (let y = 0; y < 224; y++) {
      const from = (t * height + y) * width * 3;
      cropped.set(clip.frames.subarray(from, from + 224 * 3), (t * 224 + y) * 224 * 3);
    }
  }
  const whole = { x: 0, y: 0, width: 224, height: 224 };
  for (let i = -5; i < rounds; i++) {
    const p = drawAugmentation({ epoch: 0, index: i + 5 }, width, height);
    const t0 = performance.now();
    cropResizeColour(clip.frames, numFrames, height, width, p.box, 224, 224, p.flip, undefined, true);
    const t1 = performance.now();
    cropResizeColour(clip.frames, numFrames, height, width, p.box, 224, 224, p.flip, p.colour, true);
    const t2 = performance.now();
    cropResizeColour(cropped, numFrames, 224, 224, whole, 224, 224, p.flip, p.colour, true);
    const t3 = performance.now();
    addGaussianNoise(clip.audio, randomFor(0, 0, i + 5, "audio-noise"), 0.01);
    const t4 = performance.now();
    applyAugmentation(clip, p);
    const t5 = performance.now();
    if (i < 0) continue;
    sums.crop += t1 - t0;
    sums.fusedVideo += t2 - t1;
    sums.colourOnly += t3 - t2;
    sums.audio += t4 - t3;
    sums.augmentClip += t5 - t4;
  }
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, round(v / rounds, 2)]));
}

export async function benchPipeline(opts: { json: boolean }): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), "vatt-bench-pipeline-"));
  try {
    const refs = clipRefs(await makeSources(dir));
    const demoRefs = clipRefs(await makeSources(dir, DEMO_SOURCES), 12);
    const ffmpegAlone = (clips = refs, decode: Partial<DecodeOptions> = {}) =>
      timed(async () => {
        await runPool(clips, WORKERS, async (ref) => {
          await runAlone(nullDecodeArgs(ref, decode), ref.path);
        });
        return clips.length;
      });
    const ours = (
      geometryIn: "arrays" | "ffmpeg",
      clips = refs,
      decode: Partial<DecodeOptions> = { window: "start" },
      augment = {},
      isolation: DecodeOptions["isolation"] = "process",
    ) =>
      timed(async () => {
        let n = 0;
        const examples = pretrainingExamples(clips, {
          seed: 0,
          concurrency: WORKERS,
          buffer: 2,
          geometryIn,
          decode: { ...decode, workers: WORKERS, isolation }, // nothing trains here: both cores decode, as ffmpeg alone's do
          augment,
        });
        for await (const e of examples) if (e.video.length > 0) n += 1;
        return n;
      });
    // The filter-graph path's own commands into the null muxer: the crop each clip gets (same draws as the stream).
    const info = await probe(refs[0].path);
    const size = scaledSize(info.width, info.height, defaultDecodeOptions.shortSide);
    const geometryOf = (ref: ClipRef): FilterGeometry => {
      const drawn = drawAugmentation(ref, size.width, size.height, { seed: 0 });
      return { box: drawn.box, outWidth: 224, outHeight: 224, flip: drawn.flip };
    };
    const filterGraphAlone = () =>
      timed(async () => {
        await runPool(refs, WORKERS, async (ref) => {
          await runAlone(nullDecodeArgs(ref, { window: "start" }, geometryOf(ref)), ref.path);
        });
        return refs.length;
      });
    const demoAlone = () => ffmpegAlone(demoRefs, DEMO_DECODE);
    const demoOurs = (isolation: DecodeOptions["isolation"] = "process") =>
      ours("ffmpeg", demoRefs, DEMO_DECODE, DEMO_AUGMENT, isolation);
    const inThreads = () => ours("ffmpeg", refs, { window: "start" }, {}, "thread");
    const micro = microBench(await decodeClip(refs[0], { window: "start" }));
    // Warm the page cache and the JIT once, then alternate, so neither side gets the warm or cold turn.
    await ffmpegAlone();
    await ours("arrays");
    const alone1 = await ffmpegAlone();
    const arrays1 = await ours("arrays");
    const inFfmpeg1 = await ours("ffmpeg");
    const graphAlone1 = await filterGraphAlone();
    const alone2 = await ffmpegAlone();
    const arrays2 = await ours("arrays");
    const graphAlone2 = await filterGraphAlone();
    const inFfmpeg2 = await ours("ffmpeg");
    await demoAlone();
    await demoOurs();
    const demoAlone1 = await demoAlone();
    const demoOurs1 = await demoOurs();
    const demoOurs2 = await demoOurs();
    const demoAlone2 = await demoAlone();
    // Processes against threads, alternated the same way after a warm-up of the threads' pool.
    await inThreads();
    await demoOurs("thread");
    const threads1 = await inThreads();
    const demoThreads1 = await demoOurs("thread");
    const processes1 = await ours("ffmpeg");
    const demoProcesses1 = await demoOurs();
    const demoThreads2 = await demoOurs("thread");
    const threads2 = await inThreads();
    const demoProcesses2 = await demoOurs();
    const processes2 = await ours("ffmpeg");
    const mean = (a: { clipsPerSecond: number }, b: { clipsPerSecond: number }) =>
      (a.clipsPerSecond + b.clipsPerSecond) / 2;
    const isolationOf = (processes: [Timed, Timed], threads: [Timed, Timed]) => ({
      processClipsPerSecond: round(mean(...processes)),
      threadClipsPerSecond: round(mean(...threads)),
      ratio: round(mean(...processes) / mean(...threads)),
      runs: { processes, threads },
    });
    const demoAloneRate = (demoAlone1.clipsPerSecond + demoAlone2.clipsPerSecond) / 2;
    const demoOursRate = (demoOurs1.clipsPerSecond + demoOurs2.clipsPerSecond) / 2;
    const aloneRate = (alone1.clipsPerSecond + alone2.clipsPerSecond) / 2;
    const arraysRate = (arrays1.clipsPerSecond + arrays2.clipsPerSecond) / 2;
    const oursRate = (inFfmpeg1.clipsPerSecond + inFfmpeg2.clipsPerSecond) / 2;
    const graphAloneRate = (graphAlone1.clipsPerSecond + graphAlone2.clipsPerSecond) / 2;
    const result = {
      name: "pipeline",
      clips: refs.length,
      workers: WORKERS,
      source: "640x360 H.264 30 fps + AAC 44.1 kHz",
      clip: "32 frames @ 10 fps, short side 256 -> 224x224 crop, 153600 samples @ 48 kHz",
      // The default path: crop + resize + flip in ffmpeg's filter graph, colour in typed arrays.
      oursClipsPerSecond: round(oursRate),
      ffmpegAloneClipsPerSecond: round(aloneRate),
      ratio: round(oursRate / aloneRate),
      oursNodeCpuMsPerClip: round((inFfmpeg1.nodeCpuMsPerClip + inFfmpeg2.nodeCpuMsPerClip) / 2, 2),
      // Crop + resize + flip in typed arrays instead (`augment.cropIn: arrays`), against the same reference.
      cropInArraysClipsPerSecond: round(arraysRate),
      cropInArraysRatio: round(arraysRate / aloneRate),
      cropInArraysNodeCpuMsPerClip: round((arrays1.nodeCpuMsPerClip + arrays2.nodeCpuMsPerClip) / 2, 2),
      // The default against ffmpeg alone running the same filter graph into the null muxer.
      filterGraphAloneClipsPerSecond: round(graphAloneRate),
      ratioSameFilterGraph: round(oursRate / graphAloneRate),
      // The clip `npm start` trains on, from sources like the demo's (160x120, 30 fps, ultrafast, 1 s GOP).
      demo: {
        clips: demoRefs.length,
        source: "160x120 H.264 30 fps + AAC 48 kHz",
        clip: "8 frames @ 10 fps, short side 80 -> 64x64 crop, 8192 samples @ 10.24 kHz",
        oursClipsPerSecond: round(demoOursRate),
        ffmpegAloneClipsPerSecond: round(demoAloneRate),
        ratio: round(demoOursRate / demoAloneRate),
        oursNodeCpuMsPerClip: round((demoOurs1.nodeCpuMsPerClip + demoOurs2.nodeCpuMsPerClip) / 2, 2),
        runs: { ffmpegAlone: [demoAlone1, demoAlone2], ours: [demoOurs1, demoOurs2] },
      },
      // The default path with the decoder's workers as processes (default) against threads: ratio = processes / threads.
      isolation: {
        main: isolationOf([processes1, processes2], [threads1, threads2]),
        demo: isolationOf([demoProcesses1, demoProcesses2], [demoThreads1, demoThreads2]),
      },
      peakRssMB: round((process.resourceUsage().maxRSS * 1024) / 2 ** 20, 1),
      // Main-thread ms per clip of each augmentation stage (see microBench).
      augmentMsPerClip: micro,
      runs: {
        ffmpegAlone: [alone1, alone2],
        ours: [inFfmpeg1, inFfmpeg2],
        oursCropInArrays: [arrays1, arrays2],
        filterGraphAlone: [graphAlone1, graphAlone2],
      },
    };
    if (!opts.json) {
      console.log(
        `pipeline: ours ${result.oursClipsPerSecond} clips/s, ffmpeg alone ${result.ffmpegAloneClipsPerSecond} ` +
          `clips/s, ratio ${result.ratio} (${result.ratioSameFilterGraph} against ffmpeg alone running the same ` +
          `filter graph; crop in typed arrays: ${result.cropInArraysClipsPerSecond} clips/s, ratio ` +
          `${result.cropInArraysRatio}), ` +
          `peak RSS ${result.peakRssMB} MB; augmentation ms/clip ${JSON.stringify(micro)}; demo clip: ours ` +
          `${result.demo.oursClipsPerSecond} clips/s, ffmpeg alone ${result.demo.ffmpegAloneClipsPerSecond}, ` +
          `ratio ${result.demo.ratio}; decoder in processes / threads: ${result.isolation.main.ratio} ` +
          `(${result.isolation.main.processClipsPerSecond} / ${result.isolation.main.threadClipsPerSecond} clips/s), ` +
          `demo clip ${result.isolation.demo.ratio} (${result.isolation.demo.processClipsPerSecond} / ` +
          `${result.isolation.demo.threadClipsPerSecond})`,
      );
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
