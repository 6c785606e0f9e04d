/**
 * Retrieval evaluation on held-out items: zero-shot text -> video (R@1/5/10, median rank) in S_vt, and video <->
 * audio in S_va. A video's embedding is the mean over `windows` uniformly spaced clips (centre crops) of its
 * stretch, as in the paper; audio likewise. Every figure is written beside its chance level.
 */
import { appendFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SkipLog } from "../core/skips.js";
import type { ModelConfig } from "../model/config.js";
import { embed } from "../model/step.js";
import type { VattModel } from "../model/vatt.js";
import type { DecodeOptions } from "../operators/decode.js";
import { tokenize, type Vocabulary } from "../operators/tokenize.js";
import { type RetrievalFigures, retrievalFigures, trueMatchRanks } from "../sinks/retrieval.js";
import type { EvalItem } from "./pretrain-data.js";
import { evaluationViews } from "./stream.js";

export interface EvalReport {
  step: number;
  preset: string;
  windows: number;
  items: { textToVideo: number; videoAudio: number; skipped: number };
  textToVideo?: RetrievalFigures;
  videoToAudio?: RetrievalFigures;
  audioToVideo?: RetrievalFigures;
  seconds: number;
}

interface ItemEmbedding {
  text?: string;
  hasAudio: boolean;
  videoVa: Float32Array;
  videoVt: Float32Array;
  audioVa: Float32Array;
}

function meanRows(rows: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) out[k] += rows[i * d + k] / n;
  return out;
}

function concat(rows: Float32Array[]): Float32Array {
  const d = rows[0]?.length ?? 0;
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    out.set(r, i * d);
  });
  return out;
}

export interface EvaluateOptions {
  model: VattModel;
  vocab: Vocabulary;
  items: EvalItem[];
  decode: Partial<DecodeOptions>;
  windows: number;
  concurrency: number;
  skips: SkipLog;
  step: number;
  signal?: AbortSignal;
}

/** Embeds every item (mean over its windows) and computes the retrieval figures. */
export async function evaluateRetrieval(o: EvaluateOptions): Promise<EvalReport> {
  const started = performance.now();
  const c: ModelConfig = o.model.config;
  const g = c.videoGeometry;
  const textOf = new Map(
    o.items.map((item) => [`${item.ref.source}:${item.ref.id}:${item.ref.start}`, item.text]),
  );
  const embeddings: ItemEmbedding[] = [];
  const skippedBefore = o.skips.count;
  const views = evaluationViews(
    o.items.map((i) => i.ref),
    {
      windows: o.windows,
      spatial: 1,
      concurrency: o.concurrency,
      buffer: 1,
      skips: o.skips,
      pass: () => `eval@${o.step}`, // each evaluation is one pass over the held-out items
      decode: { ...o.decode, seed: 0 },
      views: { outHeight: g.height, outWidth: g.width },
    },
  );
  for await (const { ref, views: clips } of views) {
    if (o.signal?.aborted) break;
    const n = clips.length;
    const frameSize = g.frames * g.height * g.width * 3;
    const video = new Float32Array(n * frameSize);
    const audio = new Float32Array(n * c.audioGeometry.samples);
    clips.forEach((clip, i) => {
      video.set(clip.video, i * frameSize);
      audio.set(clip.audio, i * c.audioGeometry.samples);
    });
    const e = embed(o.model, { size: n, video, videoShape: [n, g.frames, g.height, g.width, 3], audio });
    embeddings.push({
      text: textOf.get(`${ref.source}:${ref.id}:${ref.start}`),
      hasAudio: clips.every((clip) => clip.audioMask > 0),
      videoVa: meanRows(e.videoVa!, n, c.vaDim),
      videoVt: meanRows(e.videoVt!, n, c.vtDim),
      audioVa: meanRows(e.audioVa!, n, c.vaDim),
    });
  }
  const report: EvalReport = {
    step: o.step,
    preset: c.preset,
    windows: o.windows,
    items: { textToVideo: 0, videoAudio: 0, skipped: o.skips.count - skippedBefore },
    seconds: 0,
  };
  const withText = embeddings.filter((e) => e.text !== undefined);
  if (withText.length >= 2) {
    const ids = new Int32Array(withText.length * c.textConfig.maxWords);
    withText.forEach((e, i) => {
      tokenize(e.text!, o.vocab, c.textConfig.maxWords, ids, i * c.textConfig.maxWords);
    });
    const text = embed(o.model, { size: withText.length, textIds: ids }).textVt!;
    const ranks = trueMatchRanks(text, concat(withText.map((e) => e.videoVt)), withText.length, c.vtDim);
    report.textToVideo = retrievalFigures(ranks);
    report.items.textToVideo = withText.length;
  }
  const withAudio = embeddings.filter((e) => e.hasAudio);
  if (withAudio.length >= 2) {
    const video = concat(withAudio.map((e) => e.videoVa));
    const audio = concat(withAudio.map((e) => e.audioVa));
    report.videoToAudio = retrievalFigures(trueMatchRanks(video, audio, withAudio.length, c.vaDim));
    report.audioToVideo = retrievalFigures(trueMatchRanks(audio, video, withAudio.length, c.vaDim));
    report.items.videoAudio = withAudio.length;
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** Writes eval.json (the latest) and appends to evals.jsonl (the history) in the run directory. */
export async function writeEvalReport(runDir: string, report: EvalReport): Promise<void> {
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const tmp = join(runDir, `eval.json.tmp-${process.pid}`);
  await writeFile(tmp, json);
  await rename(tmp, join(runDir, "eval.json"));
  await appendFile(join(runDir, "evals.jsonl"), `${JSON.stringify(report)}\n`);
}

/** One line per figure: "text->video R@10 0.625 (chance 0.156, 4.0x)". */
export function describeEval(report: EvalReport): string[] {
  const lines: string[] = [];
  const add = (name: string, f: RetrievalFigures | undefined) => {
    if (!f) return;
    const x = (v: number, ch: number) => (ch > 0 ? `${(v / ch).toFixed(1)}x` : "-");
    lines.push(
      `${name} (${f.queries} queries): R@1 ${f["R@1"].toFixed(3)} (chance ${f.chance["R@1"].toFixed(3)}), ` +
        `R@5 ${f["R@5"].toFixed(3)} (chance ${f.chance["R@5"].toFixed(3)}), ` +
        `R@10 ${f["R@10"].toFixed(3)} (chance ${f.chance["R@10"].toFixed(3)}, ${x(f["R@10"], f.chance["R@10"])}), ` +
        `median rank ${f.medianRank} (chance ${f.chance.medianRank})`,
    );
  };
  add("text->video", report.textToVideo);
  add("video->audio", report.videoToAudio);
  add("audio->video", report.audioToVideo);
  return lines;
}
