/**
 * `vatt synth`: writes a synthetic dataset in the real published layout of HowTo100M or AudioSet, with media
 * generated in code (datasets/synth-concepts.ts) and encoded by ffmpeg (H.264 + AAC in MP4).
 *
 * Layouts written (the readers in datasets/ read exactly these, as they read the real ones):
 *
 *   howto100m/                             audioset/
 *     HowTo100M_v1.csv                       balanced_train_segments.csv   (3 '#' lines, then rows)
 *     caption.json                           eval_segments.csv
 *     videos/<video_id>.mp4                  class_labels_indices.csv
 *     synth.json                             ontology.json
 *                                            clips/<YTID>_<start seconds>.mp4   (just the 10 s segment)
 *                                            synth.json
 *
 * `synth.json` holds the ground truth (which concept is on screen when) and is written last, so its presence
 * means the dataset is complete. Text files are byte-identical for the same seed; each video is written to a
 * temporary name and renamed, so an interrupted run never leaves a half-written video under its real name.
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Random, randomFor, randomForRun } from "../core/random.js";
import { runMediaTool } from "../media/ffmpeg.js";
import {
  CONCEPTS,
  type Concept,
  captionText,
  drawStyle,
  renderAudio,
  renderBackground,
  renderFrame,
} from "./synth-concepts.js";

export type SynthKind = "howto100m" | "audioset";

export interface SynthOptions {
  kind: SynthKind;
  out: string;
  /** Number of videos (HowTo100M) or segments (AudioSet) to write. */
  videos: number;
  seed: number;
  width?: number;
  height?: number;
  fps?: number;
  /** HowTo100M video length range in seconds. */
  minSeconds?: number;
  maxSeconds?: number;
  /** AudioSet segment length in seconds. */
  clipSeconds?: number;
  /** AudioSet: share of CSV rows whose clip is not written, as with the real dataset's dead links. */
  missingShare?: number;
  /** Videos encoded at once (default 2). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SynthSegment {
  start: number;
  end: number;
  /** Indices into CONCEPTS; empty when nothing is on screen. */
  concepts: number[];
}

export interface SynthVideo {
  id: string;
  /** Path relative to the dataset folder; absent when the clip was deliberately left out (missingShare). */
  file?: string;
  duration: number;
  sampleRate: number;
  segments: SynthSegment[];
  /** AudioSet: the segment's start in the (imaginary) YouTube video and its split. */
  youtubeStart?: number;
  split?: "balanced_train" | "eval";
}

export interface SynthTruth {
  kind: SynthKind;
  seed: number;
  version: 1;
  concepts: string[];
  videos: SynthVideo[];
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** An 11-character YouTube-like id. */
function youtubeId(rng: Random): string {
  let id = "";
  for (let i = 0; i < 11; i++) id += ID_ALPHABET[rng.int(ID_ALPHABET.length)];
  return id;
}

function uniqueIds(seed: number, kind: SynthKind, n: number): string[] {
  const rng = randomForRun(seed, `synth:ids:${kind}`);
  const seen = new Set<string>();
  const ids: string[] = [];
  while (ids.length < n) {
    const id = youtubeId(rng);
    if (!seen.has(id)) {
      seen.add(id);
      ids.push(id);
    }
  }
  return ids;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** A HowTo100M-like timeline: concepts of 8-15 s one after another, with the odd stretch of nothing. */
function howtoTimeline(duration: number, rng: Random): SynthSegment[] {
  const segments: SynthSegment[] = [];
  let t = 0;
  let previous = -1;
  while (t < duration) {
    const length = rng.uniform(8, 15);
    const end = Math.min(duration, round2(t + length));
    if (rng.bernoulli(0.1)) {
      segments.push({ start: t, end, concepts: [] });
    } else {
      let c = rng.int(CONCEPTS.length);
      if (c === previous) c = (c + 1 + rng.int(CONCEPTS.length - 1)) % CONCEPTS.length;
      previous = c;
      segments.push({ start: t, end, concepts: [c] });
    }
    t = end;
  }
  return segments;
}

/** ASR-like caption lines over a timeline: 2-5 s each, neighbours overlapping, all inside the video. */
function howtoCaptions(
  timeline: readonly SynthSegment[],
  duration: number,
  rng: Random,
): { start: number[]; end: number[]; text: string[] } {
  const captions = { start: [] as number[], end: [] as number[], text: [] as string[] };
  const last = duration - 0.1; // stay clear of the last frame: container durations round
  let start = round2(rng.uniform(0, 1.5));
  while (start + 1 < last) {
    const end = round2(Math.min(last, start + rng.uniform(2, 5)));
    const mid = (start + end) / 2;
    const seg = timeline.find((s) => mid >= s.start && mid < s.end);
    let concept: Concept | undefined = seg && seg.concepts.length > 0 ? CONCEPTS[seg.concepts[0]] : undefined;
    const roll = rng.next();
    if (roll < 0.1)
      concept = undefined; // a line of pure filler
    else if (roll < 0.15) concept = CONCEPTS[rng.int(CONCEPTS.length)]; // ASR noise: a wrong concept
    captions.start.push(start);
    captions.end.push(end);
    captions.text.push(captionText(concept, rng));
    start = round2(end - rng.uniform(0.2, 1.0)); // overlap the next line with this one
  }
  return captions;
}

interface EncodeJob {
  path: string;
  width: number;
  height: number;
  fps: number;
  duration: number;
  sampleRate: number;
  segments: SynthSegment[];
  rng: Random;
}

async function* frames(job: EncodeJob): AsyncGenerator<Uint8Array> {
  const { width, height, fps, duration, segments } = job;
  const style = drawStyle(job.rng.fork("style"));
  const frameBytes = width * height * 3;
  const background = new Uint8Array(frameBytes);
  renderBackground(background, width, height, style);
  const total = Math.round(duration * fps);
  const perChunk = 8;
  for (let f0 = 0; f0 < total; f0 += perChunk) {
    const n = Math.min(perChunk, total - f0);
    const chunk = new Uint8Array(frameBytes * n);
    for (let k = 0; k < n; k++) {
      const t = (f0 + k) / fps;
      const seg = segments.find((s) => t >= s.start && t < s.end) ?? segments[segments.length - 1];
      const concepts = seg.concepts.map((c) => CONCEPTS[c]);
      renderFrame(
        chunk.subarray(k * frameBytes, (k + 1) * frameBytes),
        background,
        width,
        height,
        concepts,
        t,
        style,
      );
    }
    yield chunk;
  }
}

/** Renders frames and audio in code and has ffmpeg encode them: H.264 (yuv420p) + AAC in MP4. */
async function encodeVideo(job: EncodeJob, scratch: string): Promise<void> {
  const audio = renderAudio(
    job.segments.map((s) => ({ start: s.start, end: s.end, concepts: s.concepts.map((c) => CONCEPTS[c]) })),
    job.duration,
    job.sampleRate,
    job.rng.fork("audio"),
  );
  const audioPath = join(scratch, `${Math.floor(job.rng.next() * 1e12)}.f32`);
  await writeFile(audioPath, new Uint8Array(audio.buffer, audio.byteOffset, audio.byteLength));
  const partial = `${job.path}.partial.mp4`;
  try {
    await runMediaTool(
      "ffmpeg",
      [
        ...["-hide_banner", "-loglevel", "error", "-y"],
        ...["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${job.width}x${job.height}`, "-r", String(job.fps)],
        ...["-i", "pipe:0"],
        ...["-f", "f32le", "-ar", String(job.sampleRate), "-ac", "1", "-i", audioPath],
        ...[
          "-c:v",
          "libx264",
          "-preset",
          "ultrafast", // synthetic content: encode speed over file size
          "-crf",
          "23",
          "-pix_fmt",
          "yuv420p",
          "-g",
          String(job.fps),
        ],
        ...["-c:a", "aac", "-b:a", "96k", "-shortest", "-movflags", "+faststart", partial],
      ],
      { file: job.path, stdin: frames(job), timeoutMs: 600_000 },
    );
    await rename(partial, job.path);
  } finally {
    await rm(audioPath, { force: true });
    await rm(partial, { force: true });
  }
}

/** Runs async jobs with at most `limit` at once, in order of submission. */
export async function runLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(workers);
}

/** Encodes every video that has a file, `concurrency` at a time; video i's media is keyed by (seed, i). */
async function encodeAll(videos: readonly SynthVideo[], o: SynthOptions, scratch: string): Promise<void> {
  const written = videos.filter((v) => v.file !== undefined);
  let done = 0;
  await runLimited(written, o.concurrency ?? 2, async (v) => {
    await encodeVideo(
      {
        path: join(o.out, v.file!),
        width: o.width ?? 320,
        height: o.height ?? 240,
        fps: o.fps ?? 30,
        duration: v.duration,
        sampleRate: v.sampleRate,
        segments: v.segments,
        rng: randomFor(o.seed, 0, videos.indexOf(v), "synth:media"),
      },
      scratch,
    );
    o.onProgress?.(++done, written.length);
  });
}

export function csvQuote(field: string): string {
  return /[",\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

const HOWTO_CATEGORIES: readonly [string, string][] = [
  ["Food and Entertaining", "Recipes"],
  ["Home and Garden", "Home Repair"],
  ["Hobbies and Crafts", "Music"],
  ["Food and Entertaining", "Baking"],
];

function checkOptions(o: SynthOptions): void {
  const positiveInt = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new Error(`synth: ${name} must be a positive integer, got ${v}`);
    }
  };
  positiveInt("videos", o.videos);
  positiveInt("width", o.width);
  positiveInt("height", o.height);
  positiveInt("fps", o.fps);
  if ((o.width ?? 2) % 2 !== 0 || (o.height ?? 2) % 2 !== 0) {
    throw new Error("synth: width and height must be even (H.264 with yuv420p needs even sizes)");
  }
  const min = o.minSeconds ?? 20;
  const max = o.maxSeconds ?? 60;
  if (!(min >= 4 && max >= min))
    throw new Error(`synth: need 4 <= min seconds <= max seconds, got ${min} and ${max}`);
  if (o.missingShare !== undefined && !(o.missingShare >= 0 && o.missingShare < 1)) {
    throw new Error(`synth: missing share must be in [0, 1), got ${o.missingShare}`);
  }
}

/** Writes a synthetic HowTo100M dataset. Returns its ground truth. */
async function synthHowTo100M(o: SynthOptions, scratch: string): Promise<SynthTruth> {
  const ids = uniqueIds(o.seed, o.kind, o.videos);
  await mkdir(join(o.out, "videos"), { recursive: true });
  const videos: SynthVideo[] = [];
  const captionJson: Record<string, { start: number[]; end: number[]; text: string[] }> = {};
  const csv = ["video_id,category_1,category_2,rank,task_id"];
  ids.forEach((id, i) => {
    const rng = randomFor(o.seed, 0, i, "synth:howto100m");
    const duration = round2(rng.uniform(o.minSeconds ?? 20, o.maxSeconds ?? 60));
    const segments = howtoTimeline(duration, rng.fork("timeline"));
    captionJson[id] = howtoCaptions(segments, duration, rng.fork("captions"));
    videos.push({ id, file: `videos/${id}.mp4`, duration, sampleRate: 48000, segments });
    const [c1, c2] = HOWTO_CATEGORIES[rng.int(HOWTO_CATEGORIES.length)];
    csv.push([id, c1, c2, String(1 + rng.int(200)), String(10000 + rng.int(90000))].map(csvQuote).join(","));
  });
  await writeFile(join(o.out, "HowTo100M_v1.csv"), `${csv.join("\n")}\n`);
  await writeFile(join(o.out, "caption.json"), JSON.stringify(captionJson));
  await encodeAll(videos, o, scratch);
  return { kind: "howto100m", seed: o.seed, version: 1, concepts: CONCEPTS.map((c) => c.words[0]), videos };
}

/** Stable fake MIDs for the synthetic classes, in the AudioSet style. */
export function conceptMid(index: number): string {
  return `/m/0vatt${String(index).padStart(2, "0")}`;
}

function conceptDisplayName(c: Concept): string {
  const name = c.words[0][0].toUpperCase() + c.words[0].slice(1);
  return `${name}, ${c.words[1]}`; // a comma, as many real AudioSet names have ("Bird vocalization, bird call, bird song")
}

const SEGMENTS_HEADER = (split: string, rows: number, labels: number): string =>
  [
    `# Segments csv created by vatt synth (${split})`,
    `# num_ytids=${rows}, num_segs=${rows}, num_unique_labels=${CONCEPTS.length}, num_positive_labels=${labels}`,
    "# YTID, start_seconds, end_seconds, positive_labels",
  ].join("\n");

/** Writes a synthetic AudioSet dataset. Returns its ground truth. */
async function synthAudioSet(o: SynthOptions, scratch: string): Promise<SynthTruth> {
  const clipSeconds = o.clipSeconds ?? 10;
  const ids = uniqueIds(o.seed, o.kind, o.videos);
  const evalCount = o.videos >= 2 ? Math.max(1, Math.round(o.videos * 0.2)) : 0;
  await mkdir(join(o.out, "clips"), { recursive: true });
  // Exactly round(share * n) rows lose their clip, chosen at random.
  const order = randomForRun(o.seed, "synth:missing");
  const draws = ids.map((_, i) => ({ i, key: order.next() })).sort((a, b) => a.key - b.key);
  const missingRows = new Set(draws.slice(0, Math.round((o.missingShare ?? 0) * o.videos)).map((d) => d.i));
  const videos: SynthVideo[] = ids.map((id, i) => {
    const rng = randomFor(o.seed, 0, i, "synth:audioset");
    const first = rng.int(CONCEPTS.length);
    // Every third clip has two labels; every fifth clip is 44.1 kHz (real AudioSet: about 10 %).
    const concepts =
      i % 3 === 2 ? [first, (first + 1 + rng.int(CONCEPTS.length - 1)) % CONCEPTS.length] : [first];
    const youtubeStart = 10 * rng.int(30);
    const missing = missingRows.has(i);
    return {
      id,
      ...(missing ? {} : { file: `clips/${id}_${youtubeStart}.mp4` }),
      duration: clipSeconds,
      sampleRate: i % 5 === 1 ? 44100 : 48000,
      segments: [{ start: 0, end: clipSeconds, concepts }],
      youtubeStart,
      split: i < o.videos - evalCount ? "balanced_train" : "eval",
    };
  });
  for (const split of ["balanced_train", "eval"] as const) {
    const rows = videos.filter((v) => v.split === split);
    const labelCount = rows.reduce((n, v) => n + v.segments[0].concepts.length, 0);
    const lines = rows.map((v) => {
      const labels = v.segments[0].concepts.map(conceptMid).join(",");
      const start = v.youtubeStart!;
      return `${v.id}, ${start.toFixed(3)}, ${(start + clipSeconds).toFixed(3)}, "${labels}"`;
    });
    await writeFile(
      join(o.out, `${split}_segments.csv`),
      `${[SEGMENTS_HEADER(split, rows.length, labelCount), ...lines].join("\n")}\n`,
    );
  }
  const indices = [
    "index,mid,display_name",
    ...CONCEPTS.map((c, i) => `${i},${conceptMid(i)},${csvQuote(conceptDisplayName(c))}`),
  ];
  await writeFile(join(o.out, "class_labels_indices.csv"), `${indices.join("\n")}\n`);
  const ontology = CONCEPTS.map((c, i) => ({
    id: conceptMid(i),
    name: conceptDisplayName(c),
    description: `Synthetic sound of ${c.words[0]}: a ${c.pitch} Hz tone pulsing ${c.beatsPerSecond} times a second.`,
    citation_uri: "",
    positive_examples: [],
    child_ids: [],
    restrictions: [],
  }));
  await writeFile(join(o.out, "ontology.json"), `${JSON.stringify(ontology, null, 1)}\n`);
  await encodeAll(videos, o, scratch);
  return { kind: "audioset", seed: o.seed, version: 1, concepts: CONCEPTS.map((c) => c.words[0]), videos };
}

/** Writes a synthetic dataset of the given kind into `out` and returns its ground truth. */
export async function synthesizeDataset(o: SynthOptions): Promise<SynthTruth> {
  checkOptions(o);
  await mkdir(o.out, { recursive: true });
  await rm(join(o.out, "synth.json"), { force: true }); // incomplete until written again at the end
  const scratch = await mkdtemp(join(tmpdir(), "vatt-synth-"));
  try {
    const truth = o.kind === "howto100m" ? await synthHowTo100M(o, scratch) : await synthAudioSet(o, scratch);
    await writeFile(join(o.out, "synth.json"), `${JSON.stringify(truth)}\n`);
    return truth;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
