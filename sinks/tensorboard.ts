/**
 * TensorBoard event files, so that `tensorboard --logdir runs/` shows vatt runs. A run directory gets one file per
 * process, `events.out.tfevents.<unix seconds>.<host>`, holding TFRecord-framed `Event` protobufs: first the
 * file version, then one event per metrics line with its scalars as `simple_value`s (what TensorBoard's scalar
 * dashboard reads). Every event is appended and the file closed at once, so a killed run loses at most the line
 * being written, like metrics.jsonl.
 *
 * metrics.jsonl stays the record; the tags here are derived from its lines by `metricsLineScalars`, the same for
 * the live run (sinks/metrics.ts) and for `metricsToTensorboard`, which converts a finished run's file.
 *
 * A resumed run repeats the steps between its last checkpoint and the crash. TensorBoard's data server drops a
 * series' points at or after a step that comes again (preemption); its older Python loader needs a
 * SessionLog START event instead, so each session's first scalars are preceded by one at their step.
 */
import { appendFileSync, closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";

// ---------------------------------------------------------------------------------------------------------------
// CRC-32C (Castagnoli), reflected, as TFRecord frames use it.

const CASTAGNOLI = 0x82f63b78;

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C of `bytes` (an unsigned 32-bit number): CRC-32C("123456789") = 0xE3069283. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The masked CRC TFRecord stores: rotated right by 15 bits plus a constant, so a CRC of CRCs stays useful. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 LE length, masked CRC of those 8 bytes, the data, masked CRC of the data. */
export function tfRecordFrame(data: Uint8Array): Buffer {
  const frame = Buffer.alloc(8 + 4 + data.length + 4);
  frame.writeBigUInt64LE(BigInt(data.length), 0);
  frame.writeUInt32LE(maskedCrc32c(frame.subarray(0, 8)), 8);
  frame.set(data, 12);
  frame.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return frame;
}

// ---------------------------------------------------------------------------------------------------------------
// The Event protobuf: the parts of tensorboard/compat/proto/{event,summary}.proto that scalars need.

const schema = protobuf.Root.fromJSON({
  nested: {
    tensorboard: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ["fileVersion", "summary", "sessionLog"] } },
          fields: {
            wallTime: { type: "double", id: 1 },
            step: { type: "int64", id: 2 },
            fileVersion: { type: "string", id: 3 },
            summary: { type: "Summary", id: 5 },
            sessionLog: { type: "SessionLog", id: 7 },
          },
        },
        Summary: {
          fields: { value: { rule: "repeated", type: "Value", id: 1 } },
          nested: {
            Value: {
              // In the oneof, as in summary.proto: a oneof member has presence, so a 0 is written, not dropped.
              oneofs: { value: { oneof: ["simpleValue"] } },
              fields: { tag: { type: "string", id: 1 }, simpleValue: { type: "float", id: 2 } },
            },
          },
        },
        SessionLog: {
          fields: { status: { type: "SessionStatus", id: 1 } },
          nested: { SessionStatus: { values: { STATUS_UNSPECIFIED: 0, START: 1, STOP: 2, CHECKPOINT: 3 } } },
        },
      },
    },
  },
});
const EventType = schema.lookupType("tensorboard.Event");

/** What an event file can hold here: the version header, a session start, or scalars at a step. */
export type TensorboardEvent = { wallTime: number; step: number } & (
  | { kind: "file-version" }
  | { kind: "session-start" }
  | { kind: "scalars"; scalars: Record<string, number> }
);

export const FILE_VERSION = "brain.Event:2";

/** Scalars TensorBoard can show: finite numbers that stay finite as float32 (non-numbers are left out). */
function storableScalars(record: Record<string, unknown>): [string, number][] {
  return Object.entries(record).filter(
    (e): e is [string, number] => typeof e[1] === "number" && Number.isFinite(Math.fround(e[1])),
  );
}

/** The serialized Event protobuf (without framing). */
export function encodeEvent(e: TensorboardEvent): Uint8Array {
  const what =
    e.kind === "file-version"
      ? { fileVersion: FILE_VERSION }
      : e.kind === "session-start"
        ? { sessionLog: { status: 1 } }
        : {
            summary: {
              value: storableScalars(e.scalars).map(([tag, simpleValue]) => ({ tag, simpleValue })),
            },
          };
  return EventType.encode(EventType.fromObject({ wallTime: e.wallTime, step: e.step, ...what })).finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Tags from metrics.jsonl lines (see sinks/metrics.ts, sinks/training-loop.ts and pipeline/evaluate.ts for what they hold).

/** Step-line fields grouped as TensorBoard groups tags: by the part before the first '/'. */
const STEP_TAGS: Record<string, string> = {
  loss: "train/loss",
  nce: "train/nce",
  milNce: "train/milNce",
  lr: "train/lr",
  gradNorm: "train/gradNorm",
  examplesPerSecond: "speed/examplesPerSecond",
  dataWaitShare: "speed/dataWaitShare",
  elapsedSeconds: "speed/elapsedSeconds",
  skippedExamples: "skips/examples",
  skippedSteps: "skips/steps",
  tensors: "memory/tensors",
  rssMB: "memory/rssMB",
};

/** Eval-line fields that are settings or bookkeeping, not measurements. */
const EVAL_NOT_SCALARS = new Set(["time", "event", "step", "preset", "windows"]);

/** Every number in a nested object, keyed by its path joined with '/'. */
function numericLeaves(value: unknown, path: string, out: Record<string, number>): void {
  if (typeof value === "number") out[path] = value;
  else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) numericLeaves(v, path ? `${path}/${k}` : k, out);
  }
}

/**
 * Eval tags: `eval/textToVideo/R@10`, `eval/textToVideo/medianRank`, `eval/items/skipped`, `eval/seconds`; the
 * chance levels apart, `eval-chance/textToVideo/R@10`, so the eval group holds only measured figures.
 */
function evalScalars(record: Record<string, unknown>): Record<string, number> {
  const leaves: Record<string, number> = {};
  for (const [k, v] of Object.entries(record)) if (!EVAL_NOT_SCALARS.has(k)) numericLeaves(v, k, leaves);
  const out: Record<string, number> = {};
  for (const [path, v] of Object.entries(leaves)) {
    const parts = path.split("/");
    out[
      parts.includes("chance")
        ? `eval-chance/${parts.filter((p) => p !== "chance").join("/")}`
        : `eval/${path}`
    ] = v;
  }
  return out;
}

function stepScalars(record: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(record)) {
    if (k !== "step" && typeof v === "number") out[STEP_TAGS[k] ?? `train/${k}`] = v;
  }
  return out;
}

/**
 * What TensorBoard should get from one metrics.jsonl line: scalars for step and eval lines, a session start for
 * start/resume lines (the writer puts it at the step of the session's first scalars, the first step that may
 * repeat), nothing for the other events (checkpoints, skipped steps, the end summary).
 */
export function metricsLineEvent(record: Record<string, unknown>): TensorboardEvent | undefined {
  const step = record.step;
  if (typeof step !== "number" || !Number.isInteger(step) || step < 0) return undefined;
  const parsed = typeof record.time === "string" ? Date.parse(record.time) : Number.NaN;
  const wallTime = (Number.isFinite(parsed) ? parsed : Date.now()) / 1000;
  const event = record.event;
  if (event === "start" || event === "resume") return { kind: "session-start", wallTime, step };
  const scalars =
    event === "step" || event === undefined
      ? stepScalars(record)
      : event === "eval"
        ? evalScalars(record)
        : undefined;
  if (!scalars || storableScalars(scalars).length === 0) return undefined;
  return { kind: "scalars", wallTime, step, scalars };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing.

/** `events.out.tfevents.<unix seconds>.<host>`: the name TensorFlow's own writers give (TensorBoard needs "tfevents"). */
export function eventFileName(wallSeconds: number, host = hostname()): string {
  return `events.out.tfevents.${Math.floor(wallSeconds)}.${host}`;
}

export function isEventFileName(name: string): boolean {
  return name.includes(".tfevents.");
}

/** Creates a new event file in `dir` (never reusing one: a second writer in the same second gets a suffix). */
function createEventFile(dir: string, wallSeconds: number): string {
  const base = eventFileName(wallSeconds);
  for (let attempt = 0; ; attempt++) {
    const name = attempt === 0 ? base : `${base}.${process.pid}${attempt > 1 ? `.${attempt}` : ""}`;
    const file = join(dir, name);
    try {
      closeSync(openSync(file, "wx"));
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 100) throw err;
    }
  }
}

/**
 * Writes one event file in `dir`, created at the first event. Each session's first scalars are preceded by a
 * session start at their step (see the file comment); `sessionStart()` marks a new session within the same file.
 */
export class TensorboardWriter {
  private path: string | undefined;
  private sessionPending = true;

  constructor(readonly dir: string) {}

  /** The event file, once something was written. */
  get file(): string | undefined {
    return this.path;
  }

  /** Scalars at a step; non-numbers, NaN and infinities are left out (a step with none writes nothing). */
  scalars(step: number, record: Record<string, unknown>, wallTime = Date.now() / 1000): void {
    const scalars = Object.fromEntries(storableScalars(record));
    if (Object.keys(scalars).length === 0) return;
    this.write({ kind: "scalars", step, wallTime, scalars });
  }

  /** The next scalars start a new session (a resumed run in the same file): their step supersedes later ones. */
  sessionStart(): void {
    this.sessionPending = true;
  }

  /** Writes what a metrics.jsonl line means to TensorBoard (see `metricsLineEvent`). */
  metricsLine(record: Record<string, unknown>): void {
    const event = metricsLineEvent(record);
    if (event?.kind === "session-start") this.sessionStart();
    else if (event) this.write(event);
  }

  private write(event: TensorboardEvent): void {
    const frames: Buffer[] = [];
    if (this.path === undefined) {
      this.path = createEventFile(this.dir, event.wallTime);
      frames.push(tfRecordFrame(encodeEvent({ kind: "file-version", step: 0, wallTime: event.wallTime })));
    }
    if (this.sessionPending && event.kind === "scalars") {
      frames.push(tfRecordFrame(encodeEvent({ ...event, kind: "session-start" })));
      this.sessionPending = false;
    }
    frames.push(tfRecordFrame(encodeEvent(event)));
    appendFileSync(this.path, Buffer.concat(frames));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Converting a run's metrics.jsonl.

export class TensorboardError extends Error {
  override name = "TensorboardError";
}

export interface MetricsConversion {
  /** The event file written (undefined when metrics.jsonl held no scalars). */
  file?: string;
  lines: number;
  /** Events holding scalars. */
  events: number;
  scalars: number;
  /** Lines that were not a JSON object (cut by a crash, hand-edited): 1-based numbers, the first 10. */
  skippedLines: number[];
  skipped: number;
}

/**
 * Writes the scalars of `runDir/metrics.jsonl` into a new event file in `outDir` (default: the run directory),
 * for runs logged before event files were written live. Refuses a folder that already holds event files, since
 * TensorBoard would show every point twice.
 */
export function metricsToTensorboard(runDir: string, outDir = runDir): MetricsConversion {
  const metricsFile = join(runDir, "metrics.jsonl");
  let text: string;
  try {
    text = readFileSync(metricsFile, "utf8");
  } catch (err) {
    throw new TensorboardError(
      `cannot read '${metricsFile}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ` +
        "give the run directory of a vatt run",
    );
  }
  let existing: string[] = [];
  try {
    existing = readdirSync(outDir).filter(isEventFileName);
  } catch {
    // A missing folder fails below, when the event file is created, with its own message.
  }
  if (existing.length > 0) {
    throw new TensorboardError(
      `'${outDir}' already holds TensorBoard event files (${existing[0]}${existing.length > 1 ? ", ..." : ""}): ` +
        "runs write them as they go; delete them to convert metrics.jsonl again, or convert into another folder",
    );
  }
  const writer = new TensorboardWriter(outDir);
  const result: MetricsConversion = { lines: 0, events: 0, scalars: 0, skippedLines: [], skipped: 0 };
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim().length === 0) return;
    result.lines += 1;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      record = undefined; // a line cut short by a crash
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      result.skipped += 1;
      if (result.skippedLines.length < 10) result.skippedLines.push(i + 1);
      return;
    }
    const event = metricsLineEvent(record as Record<string, unknown>);
    if (event?.kind === "scalars") {
      result.events += 1;
      result.scalars += storableScalars(event.scalars).length;
    }
    writer.metricsLine(record as Record<string, unknown>);
  });
  return { ...result, ...(writer.file ? { file: writer.file } : {}) };
}
