/**
 * `vatt evaluate`: zero-shot retrieval of a pretraining checkpoint on a benchmark, by the paper's protocol (reused
 * from pipeline/evaluate.ts): text -> video in the video-text space, a video's embedding the mean of 4 uniformly
 * spaced windows' embeddings (centre crops at the model's size), L2-normalised; R@1/5/10 and the median rank beside
 * their chance levels; video <-> audio in the video-audio space where the clips have sound.
 *
 *   msrvtt    MSR-VTT 1k-A: MSRVTT_JSFUSION_test.csv, one sentence per video, the windows over the whole video
 *   youcook2  YouCook2 validation: one query per annotated step, the windows over the step's segment
 *   howto100m the held-out split of a HowTo100M-layout folder (as pretraining evaluates)
 *   audioset  eval_segments.csv of an AudioSet-layout folder (video <-> audio only)
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { SkipLog } from "../core/skips.js";
import { msrvtt } from "../datasets/msrvtt.js";
import { youcook2 } from "../datasets/youcook2.js";
import { type BackendChoice, selectBackend } from "../model/backend.js";
import { loadCheckpoint, readCheckpointInfo } from "../model/checkpoint.js";
import { createModel, disposeModel } from "../model/vatt.js";
import { loadVocabulary } from "../operators/tokenize.js";
import { resolveCheckpoint } from "../sinks/checkpoints.js";
import type { RetrievalFigures } from "../sinks/retrieval.js";
import type { Figures } from "./classify-eval.js";
import { type PretrainConfig, resolveConfig } from "./config.js";
import { type EvalReport, evaluateRetrieval } from "./evaluate.js";
import { RunError } from "./pretrain.js";
import { decodeOptionsFor, type EvalItem, evaluationItems } from "./pretrain-data.js";
import { wholeFile } from "./transfer-data.js";

export const BENCHMARK_KINDS = ["msrvtt", "youcook2", "howto100m", "audioset"] as const;
export type BenchmarkKind = (typeof BENCHMARK_KINDS)[number];

export interface BenchmarkOptions {
  checkpoint: string;
  dataset: string;
  kind: BenchmarkKind;
  /** Windows averaged per video (paper: 4). */
  windows?: number;
  /** Items evaluated at most (0: all; the paper's pools are 1,000 and 3,320). */
  maxItems?: number;
  vocab?: string;
  backend?: BackendChoice;
  concurrency?: number;
  log?: (line: string) => void;
}

export interface BenchmarkResult {
  /** The headline: text -> video (video -> audio for AudioSet). */
  figures: Figures;
  chance: Figures;
  report: EvalReport;
  skips: Record<string, number>;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

function flat(f: RetrievalFigures): { figures: Figures; chance: Figures } {
  return {
    figures: { "R@1": f["R@1"], "R@5": f["R@5"], "R@10": f["R@10"], medianRank: f.medianRank },
    chance: { ...f.chance },
  };
}

async function benchmarkItems(
  o: BenchmarkOptions,
  runConfig: PretrainConfig,
  model: ReturnType<typeof createModel>,
  skips: SkipLog,
): Promise<EvalItem[]> {
  const window = { windowSeconds: model.config.videoGeometry.frames / runConfig.data.fps };
  const max = o.maxItems ?? 0;
  const items: EvalItem[] = [];
  if (o.kind === "msrvtt" || o.kind === "youcook2") {
    const source =
      o.kind === "msrvtt"
        ? msrvtt({ root: o.dataset, skips, ...window })
        : youcook2({ root: o.dataset, skips });
    for await (const ref of source.refs(0)) {
      const text = ref.captions[0]?.text;
      if (!text) continue;
      // MSR-VTT: the windows spread over the whole video; YouCook2: over the step's segment.
      const placed = o.kind === "msrvtt" ? await wholeFile(ref) : ref;
      items.push({ ref: placed, text });
      if (max > 0 && items.length >= max) break;
    }
    return items;
  }
  const config = resolveConfig({
    ...runConfig,
    data: {
      ...runConfig.data,
      howto100m: o.kind === "howto100m" ? o.dataset : undefined,
      audioset: o.kind === "audioset" ? o.dataset : undefined,
      parquet: undefined,
    },
    eval: { ...runConfig.eval, maxVideos: max > 0 ? max : 100_000 },
  });
  return evaluationItems(config, model.config, skips);
}

export async function evaluateBenchmark(o: BenchmarkOptions): Promise<BenchmarkResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!(await exists(o.dataset)))
    throw new RunError(`dataset folder '${o.dataset}' does not exist: check --dataset`);
  let resolved: { file: string; runDir: string };
  try {
    resolved = await resolveCheckpoint(o.checkpoint);
  } catch (err) {
    throw new RunError((err as Error).message);
  }
  const info = await readCheckpointInfo(resolved.file);
  const runConfig = info.extra.runConfig as PretrainConfig | undefined;
  if (!runConfig || !info.config)
    throw new RunError(
      `'${resolved.file}' is not a pretraining checkpoint (no run config): give a 'vatt pretrain' run`,
    );
  const vocabPath = o.vocab ?? runConfig.data.vocab ?? join(resolved.runDir, "vocab.txt");
  if (!(await exists(vocabPath)))
    throw new RunError(`no vocabulary at '${vocabPath}': give the pretraining run's vocabulary with --vocab`);
  await selectBackend(o.backend ?? "auto");
  const skips = new SkipLog(50, (e) => log(`vatt: skipped: ${e.message}`));
  const model = createModel(info.config, 0);
  try {
    await loadCheckpoint(resolved.file, model);
    const vocab = await loadVocabulary(vocabPath);
    const items = await benchmarkItems(o, runConfig, model, skips);
    if (items.length < 2)
      throw new RunError(`${o.kind} at '${o.dataset}' gave ${items.length} item(s): need at least 2`);
    log(`vatt: ${o.kind}: embedding ${items.length} items (${o.windows ?? 4} windows each) ...`);
    const report = await evaluateRetrieval({
      model,
      vocab,
      items,
      decode: decodeOptionsFor(model.config, runConfig),
      windows: o.windows ?? 4,
      concurrency: o.concurrency ?? 4,
      skips,
      step: info.optimizer?.step ?? 0,
    });
    const headline = report.textToVideo ?? report.videoToAudio;
    if (!headline)
      throw new RunError(`${o.kind}: fewer than 2 items could be embedded (see the skips above)`);
    return { ...flat(headline), report, skips: skips.byReason() };
  } finally {
    disposeModel(model);
  }
}
