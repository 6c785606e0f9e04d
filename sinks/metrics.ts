/**
 * Where a run's numbers go: one JSON object a line in `metrics.jsonl` (always), the same scalars as TensorBoard
 * event files beside it (sinks/tensorboard.ts), and a live progress line on a terminal. The JSONL file is
 * appended and flushed line by line, so a crash loses at most the line being written and a resumed run continues
 * the same file.
 */
import { appendFileSync, statSync, truncateSync } from "node:fs";
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

  /** Lines that could not be appended since the last one that could (a full disk, say). */
  private dropped = 0;

  /** Lines lost so far because metrics.jsonl could not be written. */
  get droppedLines(): number {
    return this.droppedTotal;
  }
  private droppedTotal = 0;

  /**
   * Appends one record (any JSON object) as a line. A failed append (ENOSPC, EIO...) is reported once and the line
   * dropped: the metrics are a record of the run, not the run itself, so a full disk must not kill training (the
   * checkpoint writer reports its own failures). When appending works again, a "metrics-gap" line says how many
   * lines are missing.
   */
  write(record: Record<string, unknown>): void {
    const line = { time: new Date().toISOString(), ...record };
    if (!this.append(line)) return;
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

  /** Appends `line`, after a gap record when lines were dropped; false when the file could not be written. */
  private append(line: Record<string, unknown>): boolean {
    // A disk that fills mid-line leaves part of it written: cut the file back, so that no broken line stays in
    // metrics.jsonl (the next line would otherwise be glued to it).
    const before = statSync(this.file, { throwIfNoEntry: false })?.size;
    try {
      // The gap record and the line go in one append: on a nearly full disk the short gap record alone may fit,
      // and the line's failure then cuts it back with the rest.
      const gap =
        this.dropped > 0
          ? `${JSON.stringify({ time: line.time, event: "metrics-gap", dropped: this.dropped })}\n`
          : "";
      appendFileSync(this.file, `${gap}${JSON.stringify(line)}\n`);
      this.dropped = 0;
      return true;
    } catch (err) {
      if (before !== undefined) {
        try {
          truncateSync(this.file, before);
        } catch {
          // nothing more to do: the reader skips a line that does not parse
        }
      }
      if (this.dropped === 0)
        console.error(
          `vatt: could not append to '${this.file}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
            "training goes on and the lines lost are counted",
        );
      this.dropped += 1;
      this.droppedTotal += 1;
      return false;
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
