/**
 * `vatt demo --transfer`: the payoff of pretraining, measured. After the demo's pretraining (an existing run, or
 * one made with the demo's defaults), the same downstream jobs run twice, from (a) the pretrained checkpoint and
 * (b) the same model from random init, on synthetic UCF101- and ESC-50-layout data drawn from the pretraining
 * concepts (pairs of concepts with nuisance, `vatt synth --kind ucf101|esc50`):
 *
 *   linear evaluation, UCF101 split 1, video      frozen backbone, centre-clip features, low-rank classifier
 *   fine-tuning, UCF101 split 1, video            the same steps from both starts
 *   linear evaluation, ESC-50 fold 1, audio       frozen audio backbone
 *
 * and prints the figures side by side (top-1 / mean class accuracy with chance). Everything lands in one folder.
 */
import { access, readdir } from "node:fs/promises";
import { join } from "node:path";
import { synthesizeDownstream } from "../datasets/synth-downstream.js";
import type { Figures } from "./classify-eval.js";
import { demoConfig, ensureDemoData } from "./demo.js";
import { runFinetune } from "./finetune.js";
import { runLinearEval } from "./linear-eval.js";
import { runPretraining } from "./pretrain.js";
import { DEMO_FINETUNE } from "./transfer-config.js";

export interface TransferDemoOptions {
  /** A pretraining run to start from; default: the newest runs/demo-*, else a new demo pretraining. */
  checkpoint?: string;
  /** Where the synthetic data lives (made if absent): DIR/ucf101, DIR/esc50 (and the pretraining sets). */
  dataDir: string;
  /** Where the downstream runs go. */
  outDir: string;
  /** Fine-tuning steps (both starts). */
  steps?: number;
  /** Low-rank classifier epochs. */
  epochs?: number;
  stop?: AbortSignal;
  log?: (line: string) => void;
}

export interface TransferRow {
  task: string;
  metric: keyof Figures;
  pretrained: number;
  scratch: number;
  chance: number;
}

export interface TransferDemoResult {
  checkpoint: string;
  rows: TransferRow[];
  table: string;
  seconds: number;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The newest runs/demo-* with a checkpoint. */
async function newestDemoRun(): Promise<string | undefined> {
  const names = (await readdir("runs").catch(() => [] as string[]))
    .filter((n) => n.startsWith("demo-"))
    .sort();
  for (const name of names.reverse())
    if (await exists(join("runs", name, "checkpoints"))) return join("runs", name);
  return undefined;
}

/** The synthetic downstream sets, made by `vatt synth`'s writer when absent. */
async function ensureDownstream(
  dataDir: string,
  log: (line: string) => void,
): Promise<{ ucf101: string; esc50: string }> {
  const dirs = { ucf101: join(dataDir, "ucf101"), esc50: join(dataDir, "esc50") };
  for (const kind of ["ucf101", "esc50"] as const) {
    if (await exists(join(dirs[kind], "synth.json"))) continue;
    log(`vatt demo: writing a synthetic ${kind} dataset to ${dirs[kind]} ...`);
    await synthesizeDownstream({ kind, out: dirs[kind], seed: 3 });
  }
  return dirs;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/** The side-by-side table (Markdown). */
export function transferTable(rows: TransferRow[]): string {
  const lines = [
    "| task | metric | pretrained | random init | difference | chance |",
    "|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${pad(r.task, 34)} | ${r.metric} | ${(100 * r.pretrained).toFixed(1)} | ${(100 * r.scratch).toFixed(1)} | ` +
        `${r.pretrained - r.scratch >= 0 ? "+" : ""}${(100 * (r.pretrained - r.scratch)).toFixed(1)} | ${(100 * r.chance).toFixed(1)} |`,
    ),
  ];
  return lines.join("\n");
}

export async function runTransferDemo(o: TransferDemoOptions): Promise<TransferDemoResult> {
  const started = performance.now();
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let checkpoint = o.checkpoint ?? (await newestDemoRun());
  if (!checkpoint) {
    log("vatt demo: no pretrained demo run found: pretraining one with the demo's defaults first");
    const config = demoConfig(o.dataDir);
    await ensureDemoData(o.dataDir, log);
    checkpoint = (await runPretraining(config, { stop: o.stop, log })).runDir;
  }
  const data = await ensureDownstream(o.dataDir, log);
  log(`vatt demo: transfer from ${checkpoint} against random init`);
  const rows: TransferRow[] = [];
  const starts = [
    { name: "pretrained", checkpoint },
    { name: "scratch", checkpoint: "none" },
  ] as const;
  const figures: Record<string, Record<string, { f: Figures; chance: Figures }>> = {};
  const record = (task: string, start: string, f: Figures, chance: Figures) => {
    figures[task] ??= {};
    figures[task][start] = { f, chance };
  };
  for (const start of starts) {
    if (o.stop?.aborted) break;
    const le = await runLinearEval({
      checkpoint: start.checkpoint,
      dataset: data.ucf101,
      kind: "ucf101",
      modality: "video",
      splits: [1],
      classifier: "lowrank",
      outDir: join(o.outDir, `linear-ucf101-${start.name}`),
      epochs: o.epochs ?? 300,
      log,
    });
    record("UCF101 split 1, linear eval (video)", start.name, le.figures, le.chance);
    const esc = await runLinearEval({
      checkpoint: start.checkpoint,
      dataset: data.esc50,
      kind: "esc50",
      modality: "audio",
      splits: [1],
      classifier: "lowrank",
      outDir: join(o.outDir, `linear-esc50-${start.name}`),
      epochs: o.epochs ?? 300,
      log,
    });
    record("ESC-50 fold 1, linear eval (audio)", start.name, esc.figures, esc.chance);
    const ft = await runFinetune({
      checkpoint: start.checkpoint,
      dataset: data.ucf101,
      kind: "ucf101",
      modality: "video",
      layers: [DEMO_FINETUNE, o.steps ? { "train.steps": o.steps } : {}],
      runDir: join(o.outDir, `finetune-ucf101-${start.name}`),
      stop: o.stop,
      log,
    });
    if (ft.eval)
      record(
        `UCF101 split 1, fine-tuned ${ft.summary.step} steps`,
        start.name,
        ft.eval.figures,
        ft.eval.chance,
      );
  }
  for (const [task, byStart] of Object.entries(figures)) {
    const a = byStart.pretrained;
    const b = byStart.scratch;
    if (!a || !b) continue;
    for (const metric of ["top1", "meanClassAccuracy"] as const) {
      rows.push({
        task,
        metric,
        pretrained: a.f[metric] ?? Number.NaN,
        scratch: b.f[metric] ?? Number.NaN,
        chance: a.chance[metric] ?? Number.NaN,
      });
    }
  }
  return { checkpoint, rows, table: transferTable(rows), seconds: (performance.now() - started) / 1000 };
}
