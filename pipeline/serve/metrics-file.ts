/**
 * Reading a run's `metrics.jsonl` while it grows: bytes are read from where the last read stopped (a byte
 * offset), only whole lines are taken (a line cut mid-write waits for its newline), and a line that is not a JSON
 * object is counted and passed over so the rest still shows. Step lines become columns of numbers, which
 * `downsample` reduces to ~2k buckets (min, max and last of each) so a run with a million logged steps still
 * draws in a moment.
 */
import { open, stat } from "node:fs/promises";

/** One parsed line of metrics.jsonl (a step, an eval, a checkpoint, the end summary, ...). */
export type MetricsRecord = Record<string, unknown>;

/** Whole lines parsed from new bytes, and where reading stopped. */
export interface LineBatch {
  records: MetricsRecord[];
  /** Lines with a newline that were not JSON objects (e.g. a crash mid-write followed by a restart). */
  badLines: number;
  /** Byte offset just past the last whole line read: the next read starts here. */
  offset: number;
}

const CHUNK = 4 << 20;

/**
 * Reads the whole lines of `file` from byte `offset` on. Bytes after the last newline are left for the next read.
 * A file shorter than `offset` (rewritten from the start) reads as `truncated` so the caller can start over.
 */
export async function readLinesFrom(
  file: string,
  offset: number,
  onRecord?: (record: MetricsRecord) => void,
): Promise<LineBatch & { truncated: boolean }> {
  const size = (await stat(file)).size;
  if (size < offset) return { records: [], badLines: 0, offset: 0, truncated: true };
  const records: MetricsRecord[] = [];
  let badLines = 0;
  const take = (line: string): void => {
    if (line.length === 0) return;
    try {
      const value = JSON.parse(line) as unknown;
      if (value === null || typeof value !== "object" || Array.isArray(value)) badLines++;
      else if (onRecord) onRecord(value as MetricsRecord);
      else records.push(value as MetricsRecord);
    } catch {
      badLines++;
    }
  };
  const handle = await open(file, "r");
  let position = offset;
  // Bytes after the last newline seen, carried into the next chunk; they start at `carryStart` in the file.
  let carry = Buffer.alloc(0);
  let carryStart = offset;
  try {
    while (position < size) {
      const want = Math.min(CHUNK, size - position);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(buf, 0, want, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const data = carry.length
        ? Buffer.concat([carry, buf.subarray(0, bytesRead)])
        : buf.subarray(0, bytesRead);
      const end = data.lastIndexOf(10) + 1;
      // One decode per chunk of whole lines (decoding line by line costs more than parsing them).
      if (end > 0) for (const line of data.toString("utf8", 0, end).split("\n")) take(line);
      carryStart += end;
      carry = Buffer.from(data.subarray(end));
    }
    return { records, badLines, offset: carryStart, truncated: false };
  } finally {
    await handle.close();
  }
}

/** The step lines of a run as columns: `steps[i]` and `series[name][i]` (NaN where a line lacks the figure). */
export class StepColumns {
  steps: number[] = [];
  readonly series = new Map<string, number[]>();
  /** Every non-step line (start, eval, checkpoint, skipped-step, end, ...), in file order. */
  readonly events: MetricsRecord[] = [];
  badLines = 0;
  /** Bytes of metrics.jsonl taken so far. */
  offset = 0;
  /** The downsampled curves and the offset they were made at (a request with no new lines reuses them). */
  private reduced?: { offset: number; curves: Record<string, Downsampled> };

  /** Every series downsampled to ~`buckets` points, remade only when lines were added. */
  curves(buckets = 2000): Record<string, Downsampled> {
    if (this.reduced?.offset !== this.offset) {
      const curves: Record<string, Downsampled> = {};
      for (const [name, values] of this.series) curves[name] = downsample(this.steps, values, buckets);
      this.reduced = { offset: this.offset, curves };
    }
    return this.reduced.curves;
  }

  add(record: MetricsRecord): void {
    if (record.event !== "step" || typeof record.step !== "number") {
      this.events.push(record);
      return;
    }
    const row = this.steps.length;
    this.steps.push(record.step);
    let filled = 0;
    for (const key in record) {
      const value = record[key];
      if (key === "step" || typeof value !== "number") continue;
      let column = this.series.get(key);
      if (!column) {
        column = new Array<number>(row).fill(Number.NaN);
        this.series.set(key, column);
      }
      column.push(value);
      filled++;
    }
    // A line without some figure the others have: its columns get NaN (rare, so only then look at them all).
    if (filled < this.series.size) {
      for (const column of this.series.values()) if (column.length === row) column.push(Number.NaN);
    }
  }

  /** The last step line's figures. */
  last(): Record<string, number> | undefined {
    const n = this.steps.length;
    if (n === 0) return undefined;
    const out: Record<string, number> = { step: this.steps[n - 1] };
    for (const [key, column] of this.series) if (Number.isFinite(column[n - 1])) out[key] = column[n - 1];
    return out;
  }
}

/** Reads the new lines of `file` into `columns`; starts over when the file was rewritten. */
export async function updateColumns(file: string, columns: StepColumns): Promise<StepColumns> {
  let target = columns;
  let batch = await readLinesFrom(file, target.offset, (r) => target.add(r));
  if (batch.truncated) {
    target = new StepColumns();
    batch = await readLinesFrom(file, 0, (r) => target.add(r));
  }
  target.badLines += batch.badLines;
  target.offset = batch.offset;
  return target;
}

/** A curve reduced to buckets: per bucket the last step, its value, and the least and greatest value in it. */
export interface Downsampled {
  step: number[];
  last: number[];
  min: number[];
  max: number[];
  /** Points before reduction. */
  points: number;
}

/**
 * Reduces (steps, values) to at most `buckets` buckets of consecutive points, keeping min, max and last of each,
 * so spikes survive (a plain stride would drop them). Non-finite values are left out.
 */
export function downsample(steps: readonly number[], values: readonly number[], buckets = 2000): Downsampled {
  const out: Downsampled = { step: [], last: [], min: [], max: [], points: 0 };
  const n = Math.min(steps.length, values.length);
  let finite = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(values[i])) finite++;
  out.points = finite;
  if (finite === 0) return out;
  const per = Math.max(1, Math.ceil(finite / buckets));
  let seen = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    seen++;
    if (seen % per === 0 || seen === finite) {
      out.step.push(steps[i]);
      out.last.push(v);
      out.min.push(lo);
      out.max.push(hi);
      lo = Number.POSITIVE_INFINITY;
      hi = Number.NEGATIVE_INFINITY;
    }
  }
  return out;
}
