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
 * under a temporary name and renamed. The layout records and the writing of media live in synth-media.ts, the
 * MSR-VTT and YouCook2 layouts in synth-retrieval.ts.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Random, randomFor, randomForRun } from "../core/random.js";
import { runLimited } from "./synth.js";
import { CONCEPTS } from "./synth-concepts.js";
import {
  type DownstreamItem,
  type DownstreamLayout,
  type MediaJob,
  type MediaSizes,
  writeMedia,
} from "./synth-media.js";
import { distinctInts, layoutMsrvtt, layoutYoucook2 } from "./synth-retrieval.js";
import { clipScene, drawScene, pairCycleClasses, type Scene, type SceneClass } from "./synth-scenes.js";

export type { DownstreamItem, DownstreamLayout, MediaJob } from "./synth-media.js";

export const DOWNSTREAM_KINDS = ["ucf101", "hmdb51", "esc50", "msrvtt", "youcook2", "images"] as const;
export type DownstreamKind = (typeof DOWNSTREAM_KINDS)[number];

export function isDownstreamKind(kind: string): kind is DownstreamKind {
  return (DOWNSTREAM_KINDS as readonly string[]).includes(kind);
}

/** Media files written when `--videos` is not given: each set takes 2-40 s of CPU (2-25 s on 2 idle cores). */
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

export interface DownstreamTruth {
  kind: DownstreamKind;
  seed: number;
  version: 1;
  concepts: string[];
  classes: { name: string; concepts: number[] }[];
  items: DownstreamItem[];
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const capitalised = (w: string): string => w[0].toUpperCase() + w.slice(1);
const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/** Names of the pair classes in a dataset's style: "TomatoWhisk" (UCF101) or "tomato_whisk" (others). */
function className(c: SceneClass, style: "camel" | "snake"): string {
  const words = c.concepts.map((i) => CONCEPTS[i].words[0]);
  return style === "camel" ? words.map(capitalised).join("") : words.join("_");
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
    const scene = clipScene(classes[label].concepts, duration, rng, {
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
    const scene = clipScene(classes[label].concepts, duration, rng, {
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
    const scene = clipScene(classes[label].concepts, ESC50_SECONDS, rng, {
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
    const scene = clipScene(classes[label].concepts, 4, rng);
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
  const sizes: MediaSizes = { width: o.width ?? 160, height: o.height ?? 120, fps: o.fps ?? 25 };
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
