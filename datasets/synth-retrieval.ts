/**
 * The retrieval layouts of `vatt synth` (see datasets/synth-downstream.ts): MSR-VTT 1k-A (one sentence per video)
 * and YouCook2 (annotated steps with sentences), with videos showing the pretraining concepts their sentences name.
 */
import { join } from "node:path";
import { type Random, randomFor, randomForRun } from "../core/random.js";
import { csvQuote } from "./synth.js";
import { CONCEPTS } from "./synth-concepts.js";
import type { DownstreamItem, DownstreamLayout, MediaJob } from "./synth-media.js";
import { clipScene, drawObjects, drawScene, sceneSentence } from "./synth-scenes.js";

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** `n` distinct integers in [lo, hi), in draw order. */
export function distinctInts(rng: Random, n: number, lo: number, hi: number): number[] {
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

export function layoutMsrvtt(o: { seed: number; out: string; n: number }): DownstreamLayout {
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
    const scene = clipScene(concepts, duration, rng);
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

export function layoutYoucook2(o: { seed: number; out: string; n: number }): DownstreamLayout {
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
