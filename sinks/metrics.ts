/**
 * Where a run's numbers go: one JSON object a line in `metrics.jsonl` (always), the same scalars as TensorBoard
 * event files beside it (sinks/tensorboard.ts), and a live progress line on a terminal. The JSONL file is
 * appended and flushed line by line, so a crash loses at most the line being written and a resumed run continues
 * the same file.
 */
import { appendFileSync } from "node:fs";
import { dirname } from "node:path";
import { TensorboardWriter } from "./tensorboard.js";

export interface StepMetrics {
  step: number;
  loss: number;
  nce: number;
  milNce: number;
  lr: number;
  gradNorm: number;
  examplesPerSecond: number;
  /** Share of wall time the model waited for data since the last line, in [0, 1]. */
  dataWaitShare: number;
  skippedExamples: number;
  skippedSteps: number;
  elapsedSeconds: number;
}

export class MetricsLog {
  /** The same scalars as TensorBoard event files beside metrics.jsonl (a new file per process). */
  private tensorboard: TensorboardWriter | undefined;

  constructor(
    readonly file: string,
    options: { tensorboard?: boolean } = {},
  ) {
    if (options.tensorboard !== false) this.tensorboard = new TensorboardWriter(dirname(file));
  }

  /** Appends one record (any JSON object) as a line. */
  write(record: Record<string, unknown>): void {
    const line = { time: new Date().toISOString(), ...record };
    appendFileSync(this.file, `${JSON.stringify(line)}\n`);
    try {
      this.tensorboard?.metricsLine(line);
    } catch (err) {
      // The event files are a view of metrics.jsonl: losing them must not stop a run.
      console.error(
        `vatt: TensorBoard events are no longer written to '${this.tensorboard?.dir}' ` +
          `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); metrics.jsonl goes on`,
      );
      this.tensorboard = undefined;
    }
  }
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(s % 60).padStart(2, "0")}s`;
}

/** One line: step, loss and its parts, learning rate, speed, data wait and ETA. */
export function progressLine(m: StepMetrics, totalSteps: number, secondsPerStep: number): string {
  const eta = (totalSteps - m.step) * secondsPerStep;
  const skipped =
    m.skippedExamples + m.skippedSteps > 0 ? ` skipped ${m.skippedExamples} ex/${m.skippedSteps} steps` : "";
  // A fine-tuning step has no NCE / MIL-NCE parts (NaN).
  const parts =
    Number.isFinite(m.nce) || Number.isFinite(m.milNce)
      ? ` (nce ${m.nce.toFixed(4)} mil-nce ${m.milNce.toFixed(4)})`
      : "";
  return (
    `step ${m.step}/${totalSteps} loss ${m.loss.toFixed(4)}${parts} ` +
    `lr ${m.lr.toExponential(2)} ${m.examplesPerSecond.toFixed(1)} ex/s data-wait ${(100 * m.dataWaitShare).toFixed(0)}% ` +
    `eta ${duration(eta)}${skipped}`
  );
}

/** Rewrites the current terminal line on a TTY; prints nothing elsewhere (the JSONL file has it all). */
export class ProgressLine {
  private lastLength = 0;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  update(text: string): void {
    if (!this.enabled) return;
    const width = this.stream.columns ?? 120;
    const line = text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text;
    this.stream.write(`\r${line}${" ".repeat(Math.max(0, this.lastLength - line.length))}`);
    this.lastLength = line.length;
  }

  /** Ends the live line so that ordinary output starts on a fresh one. */
  done(): void {
    if (this.enabled && this.lastLength > 0) this.stream.write("\n");
    this.lastLength = 0;
  }
}
