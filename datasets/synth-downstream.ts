/**
 * `vatt synth --kind ucf101|hmdb51|esc50|msrvtt|youcook2|images`: synthetic DOWNSTREAM datasets in the real
 * published layouts, drawn from the pretraining concepts (datasets/synth-scenes.ts: pairs of concepts with
 * nuisance variation), so that what pretraining on `--kind howto100m|audioset` learned can transfer.
 *
 *   ucf101/   classInd.txt ("1 TomatoWhisk"), trainlist0k.txt ("Class/v_Class_g08_c01.avi 1"), testlist0k.txt
 *             ("Class/v_Class_g01_c01.avi"), k = 1..3, CRLF lines like the originals; videos Class/*.avi
 *             (MPEG-4 part 2 "XVID" + MP3, as UCF101's). Split k tests groups 7(k-1)+1 .. 7k of 25. A class's m
 *             videos are spread evenly over the 25 groups (video j -> group floor(25 j / m) + 1), so any m >= 3
 *             puts test videos in every split; clips of one group share their background, like the clips
 *             of one source video in UCF101, so a split by group is a real test of generalisation.
 *   hmdb51/   videos/<class>/<source>_<class>_u_nm_np1_fr_med_<n>.avi and
 *             testTrainMulti_7030_splits/<class>_test_split<k>.txt ("<video>.avi 1 ": 1 train, 2 test, 0 unused);
 *             two clips per source; per split about 30 % of a class's sources test, 10 % unused, the rest train.
 *   esc50/    meta/esc50.csv (filename,fold,target,category,esc10,src_file,take), sorted by filename;
 *             audio/<fold>-<src>-A-<target>.wav, 5 s 44.1 kHz mono 16-bit PCM; clip j of a class in fold j % 5 + 1.
 *   msrvtt/   MSRVTT_JSFUSION_test.csv (key,vid_key,video_id,sentence) and videos/all/videoNNNN.mp4 (H.264 + AAC):
 *             one sentence per video naming its one or two concepts.
 *   youcook2/ youcookii_annotations_trainval.json -> database -> id -> {duration, subset, recipe_type, annotations:
 *             [{segment: [start, end], id, sentence}], video_url}; raw_videos/<subset>/<recipe_type>/<id>.mp4;
 *             a third of the videos in "validation"; 3-4 steps per video, one concept each, whole seconds.
 *   images/   train/<wnid>/<wnid>_<n>.JPEG, val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG (ImageNet's layout after
 *             the usual val reorganisation), LOC_synset_mapping.txt; one image in five goes to val.
 *
 * `--videos` counts media files (clips, images); classification kinds deal them round-robin over the 8 classes.
 * `synth.json` (the ground truth) is written last; text files are byte-identical for a seed; media are written
 * under a temporary name and renamed.
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { runMediaTool } from "../pipeline/ffmpeg.js";
import { type Random, randomFor, randomForRun } from "../pipeline/random.js";
import { csvQuote, runLimited } from "./synth.js";
import { CONCEPTS } from "./synth-concepts.js";
import {
  drawObjects,
  drawScene,
  pairCycleClasses,
  renderSceneAudio,
  renderSceneBackground,
  renderSceneFrame,
  type Scene,
  type SceneClass,
  sceneSentence,
} from "./synth-scenes.js";

export const DOWNSTREAM_KINDS = ["ucf101", "hmdb51", "esc50", "msrvtt", "youcook2", "images"] as const;
export type DownstreamKind = (typeof DOWNSTREAM_KINDS)[number];

export function isDownstreamKind(kind: string): kind is DownstreamKind {
  return (DOWNSTREAM_KINDS as readonly string[]).includes(kind);
}

/** Media files written when `--videos` is not given: each set is written in seconds on 2 cores. */
export const DEFAULT_DOWNSTREAM_VIDEOS: Record<DownstreamKind, number> = {
  ucf101: 168, // 21 per class: 7 test per split
  hmdb51: 160,
  esc50: 120, // 15 per class, 3 per fold
  msrvtt: 64,
  youcook2: 24,
  images: 400,
};

/**
 * Concept orders whose pair cycles are the classes of each kind (class i = {order[i], order[i+1]}): different
 * pairs per dataset, so each benchmark is its own task over the same concepts.
 */
const CLASS_ORDERS: Record<"ucf101" | "hmdb51" | "esc50" | "images", readonly number[]> = {
  ucf101: [0, 1, 2, 3, 4, 5, 6, 7],
  hmdb51: [0, 2, 4, 6, 1, 3, 5, 7],
  esc50: [0, 3, 6, 1, 4, 7, 2, 5],
  images: [0, 5, 2, 7, 4, 1, 6, 3],
};

export interface DownstreamOptions {
  kind: DownstreamKind;
  out: string;
  /** Media files to write (default DEFAULT_DOWNSTREAM_VIDEOS[kind]). */
  videos?: number;
  seed: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Media files encoded at once (default 2). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

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

export interface DownstreamTruth {
  kind: DownstreamKind;
  seed: number;
  version: 1;
  concepts: string[];
  classes: { name: string; concepts: number[] }[];
  items: DownstreamItem[];
}

/** What one media file needs to be written: its scene and how to encode it. */
export type MediaJob =
  | { type: "video"; container: "avi" | "mp4"; path: string; scene: Scene; duration: number; rng: Random }
  | { type: "wav"; path: string; scene: Scene; duration: number; rng: Random }
  | { type: "jpeg"; path: string; scene: Scene; time: number };

interface Sizes {
  width: number;
  height: number;
  fps: number;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const capitalised = (w: string): string => w[0].toUpperCase() + w.slice(1);
const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/** Names of the pair classes in a dataset's style: "TomatoWhisk" (UCF101) or "tomato_whisk" (others). */
function className(c: SceneClass, style: "camel" | "snake"): string {
  const words = c.concepts.map((i) => CONCEPTS[i].words[0]);
  return style === "camel" ? words.map(capitalised).join("") : words.join("_");
}

/** A clip's objects (the class's pair for the whole clip) in a scene with its own nuisance. */
function classScene(
  concepts: readonly number[],
  duration: number,
  rng: Random,
  opts: { look?: Scene; audioDistractor?: boolean; active?: [number, number] } = {},
): Scene {
  const [start, end] = opts.active ?? [0, duration];
  const scene = drawScene(
    drawObjects(concepts, start, end, rng.fork("objects")),
    duration,
    rng.fork("scene"),
    {
      audioDistractor: opts.audioDistractor,
    },
  );
  if (!opts.look) return scene;
  const { background, gradient, texture, textureSeed } = opts.look;
  return { ...scene, background, gradient, texture, textureSeed };
}

/** The look (background) shared by the clips of one UCF group / HMDB source. */
function sharedLook(seed: number, kind: string, label: number, group: number): Scene {
  return drawScene([], 1, randomFor(seed, label, group, `synth:${kind}:look`));
}

/** Video j of m in a class -> UCF group 1..25, spread evenly so splits 1-3 all get test videos when m >= 3. */
export function ucfGroup(j: number, perClass: number): number {
  return Math.floor((25 * j) / perClass) + 1;
}

/** UCF101's rule: split k (1..3) tests groups 7(k-1)+1 .. 7k. */
export function ucfTestsGroup(split: number, group: number): boolean {
  return group > 7 * (split - 1) && group <= 7 * split;
}

/** Items per class when `n` files are dealt round-robin over `classes` classes. */
function perClassCounts(n: number, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => Math.floor(n / classes) + (c < n % classes ? 1 : 0));
}

const CRLF = "\r\n";

function layoutUcf101(o: { seed: number; out: string; n: number }): DownstreamLayout {
  const classes = pairCycleClasses(CLASS_ORDERS.ucf101);
  const names = classes.map((c) => className(c, "camel"));
  const counts = perClassCounts(o.n, classes.length);
  const items: DownstreamItem[] = [];
  const jobs: MediaJob[] = [];
  const clipsSoFar = new Map<string, number>();
  for (let i = 0; i < o.n; i++) {
    const label = i % classes.length;
    const j = Math.floor(i / classes.length);
    const group = ucfGroup(j, counts[label]);
    const key = `${label}:${group}`;
    const clip = (clipsSoFar.get(key) ?? 0) + 1;
    clipsSoFar.set(key, clip);
    const name = names[label];
    const file = `${name}/v_${name}_g${pad(group, 2)}_c${pad(clip, 2)}.avi`;
    const rng = randomFor(o.seed, 0, i, "synth:ucf101");
    const duration = round2(rng.uniform(3.6, 5));
    const scene = classScene(classes[label].concepts, duration, rng, {
      look: sharedLook(o.seed, "ucf101", label, group),
    });
    items.push({ file, label, concepts: classes[label].concepts, duration, group, clip });
    jobs.push({
      type: "video",
      container: "avi",
      path: join(o.out, file),
      scene,
      duration,
      rng: rng.fork("media"),
    });
  }
  // The lists are sorted by class, then group, then clip, as the published ones are.
  const sorted = [...items].sort((a, b) => a.label! - b.label! || a.group! - b.group! || a.clip! - b.clip!);
  const texts: Record<string, string> = {
    "classInd.txt": names.map((n, i) => `${i + 1} ${n}${CRLF}`).join(""),
  };
  for (let k = 1; k <= 3; k++) {
    const test = sorted.filter((it) => ucfTestsGroup(k, it.group!));
    const train = sorted.filter((it) => !ucfTestsGroup(k, it.group!));
    texts[`trainlist0${k}.txt`] = train.map((it) => `${it.file} ${it.label! + 1}${CRLF}`).join("");
    texts[`testlist0${k}.txt`] = test.map((it) => `${it.file}${CRLF}`).join("");
  }
  return { classes: classes.map((c, i) => ({ name: names[i], concepts: c.concepts })), items, jobs, texts };
}

/** HMDB51's flags for the sources of one class in one split: ~30 % test (2), ~10 % unused (0), the rest train (1). */
function hmdbFlags(sources: number, rng: Random): number[] {
  const order = Array.from({ length: sources }, (_, s) => ({ s, key: rng.next() })).sort(
    (a, b) => a.key - b.key,
  );
  const test = Math.max(1, Math.round(0.3 * sources));
  const unused = Math.floor(0.1 * sources);
  const flags = new Array<number>(sources).fill(1);
  order.forEach(({ s }, rank) => {
    flags[s] = rank < test ? 2 : rank < test + unused ? 0 : 1;
  });
  return flags;
}

function layoutHmdb51(o: { seed: number; out: string; n: number }): DownstreamLayout {
  // HMDB51's class index is the position of the class name in sorted order (there is no class list file).
  const classes = pairCycleClasses(CLASS_ORDERS.hmdb51).sort((a, b) =>
    className(a, "snake") < className(b, "snake") ? -1 : 1,
  );
  const names = classes.map((c) => className(c, "snake"));
  const counts = perClassCounts(o.n, classes.length);
  const sourcesOf = counts.map((m) => Math.ceil(m / 2));
  const flags = [1, 2, 3].map((k) =>
    sourcesOf.map((s, label) => hmdbFlags(s, randomFor(o.seed, k, label, "synth:hmdb51:split"))),
  );
  const items: DownstreamItem[] = [];
  const jobs: MediaJob[] = [];
  for (let i = 0; i < o.n; i++) {
    const label = i % classes.length;
    const j = Math.floor(i / classes.length);
    const source = Math.floor(j / 2);
    const name = names[label];
    const video = `Synth_${pad(source + 1, 3)}_${name}_u_nm_np1_fr_med_${j % 2}.avi`;
    const file = `videos/${name}/${video}`;
    const rng = randomFor(o.seed, 0, i, "synth:hmdb51");
    const duration = round2(rng.uniform(3.6, 5));
    const scene = classScene(classes[label].concepts, duration, rng, {
      look: sharedLook(o.seed, "hmdb51", label, source),
    });
    const splits = flags.map((perClass) => perClass[label][source]);
    items.push({ file, label, concepts: classes[label].concepts, duration, source: source + 1, splits });
    jobs.push({
      type: "video",
      container: "avi",
      path: join(o.out, file),
      scene,
      duration,
      rng: rng.fork("media"),
    });
  }
  const texts: Record<string, string> = {};
  for (let k = 1; k <= 3; k++) {
    names.forEach((name, label) => {
      const lines = items
        .filter((it) => it.label === label)
        .map((it) => `${it.file.split("/").pop()} ${it.splits![k - 1]} \n`)
        .sort();
      texts[`testTrainMulti_7030_splits/${name}_test_split${k}.txt`] = lines.join("");
    });
  }
  return { classes: classes.map((c, i) => ({ name: names[i], concepts: c.concepts })), items, jobs, texts };
}

const ESC50_SECONDS = 5;

function layoutEsc50(o: { seed: number; out: string; n: number }): DownstreamLayout {
  const classes = pairCycleClasses(CLASS_ORDERS.esc50);
  const names = classes.map((c) => className(c, "snake"));
  const ids = distinctInts(randomForRun(o.seed, "synth:esc50:src"), o.n, 1000, 300000);
  const items: DownstreamItem[] = [];
  const jobs: MediaJob[] = [];
  const rows: { filename: string; line: string }[] = [];
  for (let i = 0; i < o.n; i++) {
    const label = i % classes.length;
    const fold = (Math.floor(i / classes.length) % 5) + 1;
    const filename = `${fold}-${ids[i]}-A-${label}.wav`;
    const rng = randomFor(o.seed, 0, i, "synth:esc50");
    // Like many ESC-50 clips, the sound may start late and stop early, padded with silence (here: noise).
    const start = round2(rng.uniform(0, 1));
    const end = round2(rng.uniform(Math.min(ESC50_SECONDS, start + 3), ESC50_SECONDS));
    const scene = classScene(classes[label].concepts, ESC50_SECONDS, rng, {
      audioDistractor: true,
      active: [start, end],
    });
    const file = `audio/${filename}`;
    items.push({ file, label, concepts: classes[label].concepts, duration: ESC50_SECONDS, fold });
    jobs.push({
      type: "wav",
      path: join(o.out, file),
      scene,
      duration: ESC50_SECONDS,
      rng: rng.fork("media"),
    });
    const esc10 = label < 2 ? "True" : "False";
    rows.push({ filename, line: [filename, fold, label, names[label], esc10, ids[i], "A"].join(",") });
  }
  rows.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
  const header = "filename,fold,target,category,esc10,src_file,take\n";
  const texts = { "meta/esc50.csv": header + rows.map((r) => `${r.line}\n`).join("") };
  return { classes: classes.map((c, i) => ({ name: names[i], concepts: c.concepts })), items, jobs, texts };
}

/** `n` distinct integers in [lo, hi), in draw order. */
function distinctInts(rng: Random, n: number, lo: number, hi: number): number[] {
  if (hi - lo < n) throw new Error(`synth: cannot draw ${n} distinct ids from [${lo}, ${hi})`);
  const seen = new Set<number>();
  const out: number[] = [];
  while (out.length < n) {
    const v = lo + rng.int(hi - lo);
    if (!seen.has(v)) {
      seen.add(v);
      out.push(v);
    }
  }
  return out;
}

/** One or two distinct concepts (a retrieval video's content): a pair 70 % of the time. */
function drawConcepts(rng: Random): number[] {
  const first = rng.int(CONCEPTS.length);
  if (rng.bernoulli(0.3)) return [first];
  return [first, (first + 1 + rng.int(CONCEPTS.length - 1)) % CONCEPTS.length];
}

function layoutMsrvtt(o: { seed: number; out: string; n: number }): DownstreamLayout {
  // MSR-VTT's 1k-A test videos are numbered within 7010..9999.
  const numbers = distinctInts(randomForRun(o.seed, "synth:msrvtt:ids"), o.n, 7010, 10000);
  const items: DownstreamItem[] = [];
  const jobs: MediaJob[] = [];
  const lines = ["key,vid_key,video_id,sentence"];
  for (let i = 0; i < o.n; i++) {
    const rng = randomFor(o.seed, 0, i, "synth:msrvtt");
    const id = `video${numbers[i]}`;
    const concepts = drawConcepts(rng);
    const duration = round2(rng.uniform(4, 6));
    const text = sceneSentence(concepts, rng.fork("sentence"));
    const scene = classScene(concepts, duration, rng);
    const file = `videos/all/${id}.mp4`;
    items.push({ file, id, concepts, duration, sentences: [{ start: 0, end: duration, text, concepts }] });
    jobs.push({
      type: "video",
      container: "mp4",
      path: join(o.out, file),
      scene,
      duration,
      rng: rng.fork("media"),
    });
    lines.push([`ret${i}`, `msr${numbers[i]}`, id, text].map(csvQuote).join(","));
  }
  return { classes: [], items, jobs, texts: { "MSRVTT_JSFUSION_test.csv": `${lines.join("\n")}\n` } };
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const RECIPE_TYPES = ["101", "105", "113", "201", "226"] as const;

function youtubeIds(rng: Random, n: number): string[] {
  const seen = new Set<string>();
  while (seen.size < n) {
    let id = "";
    for (let i = 0; i < 11; i++) id += ID_ALPHABET[rng.int(ID_ALPHABET.length)];
    seen.add(id);
  }
  return [...seen];
}

/** A YouCook2 video's steps: 3-4 segments of whole seconds with gaps, one concept each (sometimes two). */
function youcookSteps(rng: Random): {
  segments: { start: number; end: number; concepts: number[] }[];
  duration: number;
} {
  const segments: { start: number; end: number; concepts: number[] }[] = [];
  let t = 1 + rng.int(2);
  let previous = -1;
  const count = 3 + rng.int(2);
  for (let s = 0; s < count; s++) {
    const end = t + 2 + rng.int(3);
    let c = rng.int(CONCEPTS.length);
    if (c === previous) c = (c + 1) % CONCEPTS.length;
    previous = c;
    const concepts = rng.bernoulli(0.25)
      ? [c, (c + 1 + rng.int(CONCEPTS.length - 1)) % CONCEPTS.length]
      : [c];
    segments.push({ start: t, end, concepts });
    t = end + 1 + rng.int(2);
  }
  return { segments, duration: round2(segments[segments.length - 1].end + rng.uniform(0.5, 1.5)) };
}

function layoutYoucook2(o: { seed: number; out: string; n: number }): DownstreamLayout {
  const ids = youtubeIds(randomForRun(o.seed, "synth:youcook2:ids"), o.n);
  const items: DownstreamItem[] = [];
  const jobs: MediaJob[] = [];
  const database: Record<string, unknown> = {};
  for (let i = 0; i < o.n; i++) {
    const rng = randomFor(o.seed, 0, i, "synth:youcook2");
    const id = ids[i];
    const subset = i % 3 === 2 ? "validation" : "training";
    const recipeType = RECIPE_TYPES[rng.int(RECIPE_TYPES.length)];
    const { segments, duration } = youcookSteps(rng.fork("steps"));
    const sentenceRng = rng.fork("sentences");
    const sentences = segments.map((s) => ({ ...s, text: sceneSentence(s.concepts, sentenceRng) }));
    const objectRng = rng.fork("objects");
    const objects = segments.flatMap((s) => drawObjects(s.concepts, s.start, s.end, objectRng));
    const scene = drawScene(objects, duration, rng.fork("scene"));
    const file = `raw_videos/${subset}/${recipeType}/${id}.mp4`;
    database[id] = {
      duration,
      subset,
      recipe_type: recipeType,
      annotations: sentences.map((s, k) => ({ segment: [s.start, s.end], id: k, sentence: s.text })),
      video_url: `https://www.youtube.com/watch?v=${id}`,
    };
    items.push({
      file,
      id,
      concepts: [...new Set(segments.flatMap((s) => s.concepts))],
      duration,
      sentences: sentences.map((s) => ({ start: s.start, end: s.end, text: s.text, concepts: s.concepts })),
    });
    jobs.push({
      type: "video",
      container: "mp4",
      path: join(o.out, file),
      scene,
      duration,
      rng: rng.fork("media"),
    });
  }
  const json = JSON.stringify({ database });
  return { classes: [], items, jobs, texts: { "youcookii_annotations_trainval.json": `${json}\n` } };
}

/** A made-up WordNet id per class, in ImageNet's n + 8 digits form. */
export function synthWnid(label: number): string {
  return `n${pad(99000001 + label, 8)}`;
}

function layoutImages(o: { seed: number; out: string; n: number }): DownstreamLayout {
  const classes = pairCycleClasses(CLASS_ORDERS.images);
  const names = classes.map((c) => className(c, "snake"));
  const items: DownstreamItem[] = [];
  const jobs: MediaJob[] = [];
  let val = 0;
  for (let i = 0; i < o.n; i++) {
    const label = i % classes.length;
    const j = Math.floor(i / classes.length);
    const wnid = synthWnid(label);
    const split = j % 5 === 4 ? "val" : "train";
    const file =
      split === "train"
        ? `train/${wnid}/${wnid}_${j}.JPEG`
        : `val/${wnid}/ILSVRC2012_val_${pad(++val, 8)}.JPEG`;
    const rng = randomFor(o.seed, 0, i, "synth:images");
    const time = round2(rng.uniform(0, 3));
    const scene = classScene(classes[label].concepts, 4, rng);
    items.push({ file, label, concepts: classes[label].concepts, split });
    jobs.push({ type: "jpeg", path: join(o.out, file), scene, time });
  }
  const mapping = classes.map(
    (c, i) => `${synthWnid(i)} ${c.concepts.map((k) => CONCEPTS[k].words[0]).join(", ")}\n`,
  );
  return {
    classes: classes.map((c, i) => ({ name: names[i], concepts: c.concepts })),
    items,
    jobs,
    texts: { "LOC_synset_mapping.txt": mapping.join("") },
  };
}

/** Everything a dataset is before anything is written: classes, ground truth, media to make, text files. */
export interface DownstreamLayout {
  classes: { name: string; concepts: number[] }[];
  items: DownstreamItem[];
  jobs: MediaJob[];
  /** Path relative to the dataset folder -> content. */
  texts: Record<string, string>;
}

const LAYOUTS: Record<DownstreamKind, (o: { seed: number; out: string; n: number }) => DownstreamLayout> = {
  ucf101: layoutUcf101,
  hmdb51: layoutHmdb51,
  esc50: layoutEsc50,
  msrvtt: layoutMsrvtt,
  youcook2: layoutYoucook2,
  images: layoutImages,
};

/** The layout of `n` media files of a kind for a seed (pure: nothing is written). */
export function downstreamLayout(kind: DownstreamKind, seed: number, n: number, out = "."): DownstreamLayout {
  return LAYOUTS[kind]({ seed, out, n });
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

async function* sceneFrames(scene: Scene, duration: number, sizes: Sizes): AsyncGenerator<Uint8Array> {
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
async function writeMedia(job: MediaJob, sizes: Sizes, scratch: string): Promise<void> {
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

function checkDownstreamOptions(o: DownstreamOptions, n: number): void {
  const positiveInt = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new Error(`synth ${o.kind}: ${name} must be a positive integer, got ${v}`);
    }
  };
  positiveInt("videos", n);
  positiveInt("width", o.width);
  positiveInt("height", o.height);
  positiveInt("fps", o.fps);
  if ((o.width ?? 2) % 2 !== 0 || (o.height ?? 2) % 2 !== 0) {
    throw new Error(`synth ${o.kind}: width and height must be even (yuv420p video needs even sizes)`);
  }
  const classified = o.kind === "ucf101" || o.kind === "hmdb51" || o.kind === "esc50" || o.kind === "images";
  if (classified && n < CONCEPTS.length) {
    throw new Error(
      `synth ${o.kind}: --videos ${n} leaves classes empty; give at least ${CONCEPTS.length} (one per class)`,
    );
  }
}

/** Writes a synthetic downstream dataset of the given kind into `out` and returns its ground truth. */
export async function synthesizeDownstream(o: DownstreamOptions): Promise<DownstreamTruth> {
  const n = o.videos ?? DEFAULT_DOWNSTREAM_VIDEOS[o.kind];
  checkDownstreamOptions(o, n);
  const sizes: Sizes = { width: o.width ?? 160, height: o.height ?? 120, fps: o.fps ?? 25 };
  await mkdir(o.out, { recursive: true });
  await rm(join(o.out, "synth.json"), { force: true }); // incomplete until written again at the end
  const layout = downstreamLayout(o.kind, o.seed, n, o.out);
  for (const [rel, text] of Object.entries(layout.texts)) {
    await mkdir(dirname(join(o.out, rel)), { recursive: true });
    await writeFile(join(o.out, rel), text);
  }
  const scratch = await mkdtemp(join(tmpdir(), "vatt-synth-"));
  try {
    let done = 0;
    await runLimited(layout.jobs, o.concurrency ?? 2, async (job) => {
      await writeMedia(job, sizes, scratch);
      o.onProgress?.(++done, layout.jobs.length);
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const truth: DownstreamTruth = {
    kind: o.kind,
    seed: o.seed,
    version: 1,
    concepts: CONCEPTS.map((c) => c.words[0]),
    classes: layout.classes,
    items: layout.items,
  };
  await writeFile(join(o.out, "synth.json"), `${JSON.stringify(truth)}\n`);
  return truth;
}
