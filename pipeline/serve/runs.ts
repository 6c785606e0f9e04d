/**
 * Runs under a folder, as the web view and the report see them: any folder holding `metrics.jsonl` or
 * `config.json` (a pretraining run, a transfer run) is a run. Each run is read on its own, so one half-written or
 * corrupt run is shown as such and the others are still served.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { RetiredFile } from "../../core/retired.js";
import { describeSkipTally, type SkipTally } from "../../core/skips.js";
import { type Downsampled, type MetricsRecord, StepColumns, updateColumns } from "./metrics-file.js";

/** Folders never searched for runs: a run's own checkpoints, caches, dependencies. */
const NOT_RUNS = new Set(["checkpoints", "node_modules", ".git", "tensorboard"]);

/** The run folders under `root` (itself included), as paths relative to it ("" for the root). */
export async function findRuns(root: string, maxDepth = 4): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.isFile() && (e.name === "metrics.jsonl" || e.name === "config.json"))) {
      found.push(relative(root, dir).split(sep).join("/"));
    }
    if (depth >= maxDepth) return;
    for (const e of entries) {
      if (e.isDirectory() && !NOT_RUNS.has(e.name) && !e.name.startsWith(".")) {
        await walk(join(dir, e.name), depth + 1);
      }
    }
  };
  await walk(root, 0);
  return found.sort();
}

/** A problem with one file of a run, shown on the page beside the run. */
export interface RunProblem {
  file: string;
  message: string;
}

/** One skip count: the stage or file, the reason, how many; from the end summary or the last step line. */
export interface SkipRow {
  where: string;
  reason: string;
  count: number;
  /** Steps skipped with this reason (non-finite loss), when the row counts steps. */
  steps?: number[];
  /** What the count is made of, e.g. "1 line, seen in 16 passes", or which file was retired. */
  detail?: string;
}

/** A retrieval figure over evaluation steps, beside its chance level. */
export interface EvalCurve {
  name: string;
  step: number[];
  value: number[];
  chance: number[];
}

export interface RunView {
  id: string;
  /** "ok", "live" (metrics written in the last minute), "unfinished" (no end line), "corrupt", "empty". */
  status: "ok" | "live" | "unfinished" | "corrupt" | "empty";
  problems: RunProblem[];
  config?: unknown;
  /** The last step line's figures (loss, nce, milNce, lr, ...). */
  last?: Record<string, number>;
  /** The latest evaluation (eval.json), as written. */
  eval?: Record<string, unknown>;
  /** Its figures, each beside its chance level. */
  evalFigures: EvalFigure[];
  /** Named curves (downsampled) of the step lines. */
  curves: Record<string, Downsampled>;
  evalCurves: EvalCurve[];
  skips: SkipRow[];
  events: { start?: MetricsRecord; end?: MetricsRecord };
  /** Image files in the run folder (plots, contact sheets), relative to the run. */
  images: string[];
  /** Bytes of metrics.jsonl read: a live view follows from here. */
  offset: number;
  badLines: number;
}

async function readJson(path: string): Promise<{ value?: unknown; error?: string; missing?: boolean }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? { missing: true } : { error: `cannot be read (${code})` };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `is not valid JSON (${(err as Error).message}); it may be half-written` };
  }
}

/** One evaluation figure beside its chance level, e.g. "textToVideo R@10" or (a transfer run) "top1". */
export interface EvalFigure {
  name: string;
  value: number;
  chance?: number;
}

const DIRECTIONS = ["textToVideo", "videoToAudio", "audioToVideo"] as const;
type Figures = Record<string, unknown> & { chance?: Record<string, unknown> };

/**
 * The figures of one evaluation record, in any of the shapes runs write: retrieval (pipeline/evaluate.ts:
 * `{ textToVideo: { "R@10", ..., chance } }`), a transfer run's eval.json (`{ figures, chance }`) or its eval line
 * in metrics.jsonl (figures at the top, `chance` beside them).
 */
export function evalFigures(record: Record<string, unknown>): EvalFigure[] {
  const out: EvalFigure[] = [];
  const flat = (prefix: string, figures: Figures, chance: Record<string, unknown> | undefined) => {
    for (const [key, value] of Object.entries(figures)) {
      if (typeof value !== "number" || key === "queries" || key === "step" || key === "seconds") continue;
      const c = chance?.[key];
      out.push({ name: `${prefix}${key}`, value, ...(typeof c === "number" ? { chance: c } : {}) });
    }
  };
  for (const dir of DIRECTIONS) {
    const f = record[dir] as Figures | undefined;
    if (f && typeof f === "object") flat(`${dir} `, f, f.chance);
  }
  const chance = record.chance as Record<string, unknown> | undefined;
  if (chance && typeof chance === "object") {
    const figures =
      record.figures && typeof record.figures === "object" ? (record.figures as Figures) : record;
    flat("", Object.fromEntries(Object.entries(figures).filter(([k]) => k in chance)), chance);
  }
  return out;
}

/** Evaluation figures over steps from evals.jsonl lines (or eval events), each beside its chance level. */
export function evalCurves(reports: readonly MetricsRecord[]): EvalCurve[] {
  const curves = new Map<string, EvalCurve>();
  for (const r of reports) {
    if (typeof r.step !== "number") continue;
    for (const f of evalFigures(r)) {
      let c = curves.get(f.name);
      if (!c) {
        c = { name: f.name, step: [], value: [], chance: [] };
        curves.set(f.name, c);
      }
      c.step.push(r.step);
      c.value.push(f.value);
      c.chance.push(f.chance ?? Number.NaN);
    }
  }
  return [...curves.values()];
}

/** The skip table: the end summary's counts ("where:reason" -> n), else the last step line's totals. */
export function skipRows(columns: StepColumns): SkipRow[] {
  const end = [...columns.events].reverse().find((e) => e.event === "end");
  const rows: SkipRow[] = [];
  const skippedSteps = columns.events.filter((e) => e.event === "skipped-step");
  if (end?.skips && typeof end.skips === "object") {
    const tallies = (end.skipTallies ?? {}) as Record<string, SkipTally>;
    for (const [key, count] of Object.entries(end.skips as Record<string, number>)) {
      const cut = key.lastIndexOf(":");
      const tally = tallies[key];
      rows.push({
        where: key.slice(0, Math.max(0, cut)),
        reason: key.slice(cut + 1),
        count,
        ...(tally?.passes ? { detail: describeSkipTally(tally) } : {}),
      });
    }
    for (const e of Array.isArray(end.retired) ? (end.retired as Partial<RetiredFile>[]) : []) {
      rows.push({
        where: "retired file",
        reason: String(e.reason ?? "?"),
        count: 1,
        detail: `${e.file}: failed in passes ${(e.passes ?? []).join(", ")}; not asked for from pass ${e.fromPass} on`,
      });
    }
  } else {
    const last = columns.last();
    if (last?.skippedExamples)
      rows.push({
        where: "examples",
        reason: "(counts by reason come with the end line)",
        count: last.skippedExamples,
      });
  }
  const byReason = new Map<string, number[]>();
  for (const e of skippedSteps) {
    const reason = String(e.reason ?? "unknown");
    byReason.set(reason, [...(byReason.get(reason) ?? []), Number(e.step) + 1]);
  }
  for (const [reason, steps] of byReason)
    rows.push({ where: "training step", reason, count: steps.length, steps });
  return rows;
}

const IMAGE = /\.(png|jpe?g|svg)$/i;

/** Reads one run; never throws for what is in its files (problems are listed instead). */
export async function readRun(
  root: string,
  id: string,
  columns?: StepColumns,
): Promise<{ view: RunView; columns: StepColumns }> {
  const dir = join(root, id);
  const problems: RunProblem[] = [];
  const config = await readJson(join(dir, "config.json"));
  if (config.error) problems.push({ file: "config.json", message: `config.json ${config.error}` });
  const evalJson = await readJson(join(dir, "eval.json"));
  if (evalJson.error) problems.push({ file: "eval.json", message: `eval.json ${evalJson.error}` });
  let cols = columns ?? new StepColumns();
  const metricsFile = join(dir, "metrics.jsonl");
  const metricsStat = await stat(metricsFile).catch(() => undefined);
  if (metricsStat) {
    try {
      cols = await updateColumns(metricsFile, cols);
    } catch (err) {
      problems.push({
        file: "metrics.jsonl",
        message: `metrics.jsonl cannot be read (${(err as Error).message})`,
      });
    }
    if (cols.badLines > 0) {
      problems.push({
        file: "metrics.jsonl",
        message: `metrics.jsonl: ${cols.badLines} line(s) are not JSON objects and were passed over`,
      });
    }
  }
  let evalLines: MetricsRecord[] = [];
  const evalsText = await readFile(join(dir, "evals.jsonl"), "utf8").catch(() => "");
  for (const line of evalsText.split("\n")) {
    if (!line.trim()) continue;
    try {
      evalLines.push(JSON.parse(line) as MetricsRecord);
    } catch {
      // a cut last line of evals.jsonl: the rest still shows
    }
  }
  if (evalLines.length === 0) evalLines = cols.events.filter((e) => e.event === "eval");
  const curves = cols.curves();
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const images = entries
    .filter((e) => e.isFile() && IMAGE.test(e.name))
    .map((e) => e.name)
    .sort();
  const end = [...cols.events].reverse().find((e) => e.event === "end");
  const start = cols.events.find((e) => e.event === "start" || e.event === "resume");
  let status: RunView["status"] = "ok";
  if (problems.length > 0) status = "corrupt";
  else if (!metricsStat) status = "empty";
  else if (!end) status = Date.now() - metricsStat.mtimeMs < 60_000 ? "live" : "unfinished";
  const view: RunView = {
    id,
    status,
    problems,
    ...(config.value !== undefined ? { config: config.value } : {}),
    ...(cols.last() ? { last: cols.last() } : {}),
    ...(evalJson.value && typeof evalJson.value === "object"
      ? { eval: evalJson.value as Record<string, unknown> }
      : {}),
    evalFigures:
      evalJson.value && typeof evalJson.value === "object"
        ? evalFigures(evalJson.value as MetricsRecord)
        : [],
    curves,
    evalCurves: evalCurves(evalLines),
    skips: skipRows(cols),
    events: { ...(start ? { start } : {}), ...(end ? { end } : {}) },
    images,
    offset: cols.offset,
    badLines: cols.badLines,
  };
  return { view, columns: cols };
}
