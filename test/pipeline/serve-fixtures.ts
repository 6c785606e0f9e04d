/**
 * Test helper for the web view: run folders written the way `vatt pretrain` writes them (config.json,
 * metrics.jsonl with start / step / eval / skipped-step / checkpoint / end lines, evals.jsonl, eval.json, a PNG),
 * with made-up but plausible numbers, so the view can be checked against the files without training.
 */
import { appendFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { randomForRun } from "../../core/random.js";
import { writeEvalReport } from "../../pipeline/evaluate.js";
import { retrievalFigures } from "../../sinks/retrieval.js";

export interface FakeRunOptions {
  steps: number;
  logEvery?: number;
  evalEvery?: number;
  seed?: number;
  /** Write the end line and the final evaluation (a finished run). */
  finished?: boolean;
  /** Scales the loss so two runs differ. */
  lossScale?: number;
}

/** One step line as sinks/training-loop.ts writes it. */
export function stepLine(step: number, total: number, seed: number, scale = 1): Record<string, unknown> {
  const rng = randomForRun(seed, `fake-step:${step}`);
  const progress = step / total;
  const nce = scale * (2.2 * Math.exp(-3 * progress) + 0.3 + 0.05 * rng.next());
  const milNce = scale * (3.0 * Math.exp(-2.5 * progress) + 0.5 + 0.05 * rng.next());
  return {
    time: new Date(Date.UTC(2026, 0, 1) + step * 1000).toISOString(),
    event: "step",
    step,
    loss: nce + milNce,
    nce,
    milNce,
    lr: 1e-4 * Math.min(1, step / Math.max(1, total / 10)) * (1 - 0.9 * progress),
    gradNorm: 1 + rng.next(),
    examplesPerSecond: 40 + 10 * rng.next(),
    dataWaitShare: 0.1 + 0.2 * rng.next(),
    skippedExamples: Math.floor(step / 50),
    skippedSteps: step >= 7 ? 1 : 0,
    elapsedSeconds: step * 0.8,
    tensors: 812,
    rssMB: 900,
  };
}

/** Ranks that give a retrieval report better than chance, drawn from the seed. */
function fakeRanks(n: number, seed: number, step: number): number[] {
  const rng = randomForRun(seed, `fake-eval:${step}`);
  return Array.from({ length: n }, () => 1 + Math.floor(rng.next() ** 2 * n));
}

export function evalReport(step: number, seed: number): Record<string, unknown> {
  const t = retrievalFigures(fakeRanks(32, seed, step));
  const va = retrievalFigures(fakeRanks(32, seed + 1, step));
  return {
    step,
    preset: "tiny",
    windows: 4,
    items: { textToVideo: 32, videoAudio: 32, skipped: 0 },
    textToVideo: t,
    videoToAudio: va,
    audioToVideo: retrievalFigures(fakeRanks(32, seed + 2, step)),
    seconds: 1.5,
  };
}

/** A small PNG of a solid colour (stands in for loss.png / a contact sheet). */
export function solidPng(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
}

/** Writes a run folder; returns the metrics lines written. */
export async function writeFakeRun(dir: string, o: FakeRunOptions): Promise<Record<string, unknown>[]> {
  const seed = o.seed ?? 1;
  const logEvery = o.logEvery ?? 1;
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "config.json"),
    `${JSON.stringify({ seed, model: { preset: "tiny" }, train: { steps: o.steps, batchSize: 8, lambda: 1 } }, null, 2)}\n`,
  );
  const lines: Record<string, unknown>[] = [
    { event: "start", step: 0, backend: "wasm", preset: "tiny", params: 1e6, vocab: 500 },
  ];
  for (let step = 1; step <= o.steps; step++) {
    if (step === 7)
      lines.push({ event: "skipped-step", step: 6, reason: "non-finite loss", loss: "NaN", ids: ["a", "b"] });
    if (step % logEvery === 0 || step === o.steps) lines.push(stepLine(step, o.steps, seed, o.lossScale));
    if (o.evalEvery && step % o.evalEvery === 0 && step < o.steps)
      lines.push({ event: "eval", ...evalReport(step, seed) });
  }
  if (o.finished !== false) {
    lines.push({
      event: "end",
      step: o.steps,
      ended: "steps",
      skips: { "decode:corrupt": 3, "howto100m:caption.json:bad-row": 2 },
    });
    lines.push({ event: "eval", ...evalReport(o.steps, seed) });
  }
  await writeFile(join(dir, "metrics.jsonl"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  for (const l of lines.filter((x) => x.event === "eval")) {
    const { event: _, ...report } = l;
    // biome-ignore lint/suspicious/noExplicitAny: the fake report has EvalReport's fields
    await writeEvalReport(dir, report as any);
  }
  await writeFile(join(dir, "loss.png"), await solidPng(64, 32, [200, 30, 30]));
  return lines;
}

/** Appends lines to a run's metrics.jsonl, as a live run does. */
export async function appendLines(dir: string, lines: Record<string, unknown>[]): Promise<void> {
  await appendFile(join(dir, "metrics.jsonl"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
}
