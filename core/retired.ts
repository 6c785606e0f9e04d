/**
 * Files a run stops asking for. A video that fails in every window it is asked for, pass after pass, would
 * otherwise be decoded (and fail) once per pass for the whole run: after `after` such passes in a row (3 by
 * default) it is retired, never asked for again in this run. A reason can also retire a file on its first
 * failure (`atOnce`, e.g. a decoder crash: asking again risks another crash and teaches nothing).
 *
 * Pure bookkeeping, no I/O: the pipeline reports each decode's outcome (`succeeded`, `failed`), says when a pass
 * begins (`beginPass`), asks `has(file, pass)` before decoding, and persists `toJSON()` where it likes.
 *
 * When retirement takes effect, and why that keeps runs exact: a pass is judged only when it is over (the pipeline
 * lets the pass's decodes finish before the next pass begins), so "failed in every window" is a fact, not a
 * race, and a file retired after pass p is dropped from pass p + 1 on (`fromPass`). Dropping happens after the
 * pass's order is drawn, in place of the decode: the order of every pass stays what (seed, epoch) makes it, and a
 * dropped clip is one that would have failed, so the examples served are the same as without retirement. An
 * at-once retirement drops the file's remaining clips of the current pass too, for the same reason.
 */
import { stableHash } from "./order.js";

export interface RetiredFile {
  file: string;
  /** Skip reason of its last failure, e.g. "invalid", "timeout". */
  reason: string;
  /** The last failure's message (what, where, what to do). */
  message: string;
  /** The passes it failed in, every window asked for failing. */
  passes: number[];
  /** The first pass it is not asked for in. */
  fromPass: number;
  /** Why now: `after` failed passes in a row, or a reason that retires at once. */
  rule: "passes" | "at-once";
}

/** A file that failed in its last passes, not yet retired. */
export interface SuspectFile {
  file: string;
  reason: string;
  message: string;
  /** The passes it failed in, in a row (a pass where any window decoded clears them). */
  passes: number[];
}

export interface RetireRules {
  /** Failed passes in a row that retire a file (0: never). Default 3. */
  after?: number;
  /** Reasons that retire a file on its first failure. */
  atOnce?: (reason: string) => boolean;
}

/** The decoder crashing on a file (skip reason "crashed-decoder") retires it at once: another try risks another crash. */
export const retireAtOnce = (reason: string): boolean => reason === "crashed-decoder";

/** The whole state, plain JSON: what a checkpoint stores to resume the bookkeeping exactly. */
export interface RetiredState {
  version: 1;
  retired: RetiredFile[];
  suspects: SuspectFile[];
  /** The pass being read: its failures so far, and the files that decoded in it (32-bit hashes, base64). */
  open?: { pass: number; failed: { file: string; reason: string; message: string }[]; succeeded: string };
}

export class RetiredFiles {
  private readonly after: number;
  private readonly atOnce: (reason: string) => boolean;
  private readonly retired = new Map<string, RetiredFile>();
  private readonly suspects = new Map<string, SuspectFile>();
  private open: number | undefined;
  private readonly failedNow = new Map<string, { reason: string; message: string }>();
  /** Hashes of the files that decoded at least once in the open pass (a hash per file, not the path: passes hold millions). */
  private readonly succeededNow = new Set<number>();
  private changeCount = 0;

  constructor(rules: RetireRules = {}) {
    this.after = rules.after ?? 3;
    this.atOnce = rules.atOnce ?? (() => false);
    if (!(Number.isInteger(this.after) && this.after >= 0))
      throw new RangeError(`retire after must be an integer >= 0 passes, got ${this.after}`);
  }

  /** Whether `file` is retired (in `pass`, when given: retired from that pass or earlier). */
  has(file: string, pass?: number): boolean {
    const entry = this.retired.get(file);
    return entry !== undefined && (pass === undefined || entry.fromPass <= pass);
  }

  /** Retires `file` from `pass` on (default: the open pass, i.e. at once). Returns the entry (the old one if any). */
  retire(file: string, reason: string, message: string, pass = this.open ?? 0): RetiredFile {
    const existing = this.retired.get(file);
    if (existing) return existing;
    const suspect = this.suspects.get(file);
    const passes = [...(suspect?.passes ?? [])];
    if (this.failedNow.has(file) && !passes.includes(pass)) passes.push(pass);
    const entry: RetiredFile = { file, reason, message, passes, fromPass: pass, rule: "at-once" };
    this.retired.set(file, entry);
    this.suspects.delete(file);
    this.failedNow.delete(file);
    this.changeCount += 1;
    return entry;
  }

  /** Retired files, in the order they were retired. */
  entries(): RetiredFile[] {
    return [...this.retired.values()];
  }

  /** Files that failed in their last passes, not (yet) retired. */
  suspectFiles(): SuspectFile[] {
    return [...this.suspects.values()];
  }

  /** Grows whenever the retired or suspect lists change: persist when it moved. */
  get changes(): number {
    return this.changeCount;
  }

  /** The pass being read, once one has begun. */
  get openPass(): number | undefined {
    return this.open;
  }

  /** One window of `file` decoded in `pass`. */
  succeeded(file: string, pass: number): void {
    if (this.open === undefined) this.open = pass;
    if (pass !== this.open) return; // a pass already judged (a resumed run replays its tail) or a stray
    this.succeededNow.add(stableHash(file));
  }

  /**
   * One window of `file` failed in `pass` with skip `reason`. Returns the entry when the reason retires the file
   * at once (the caller persists it), else undefined.
   */
  failed(file: string, pass: number, reason: string, message: string): RetiredFile | undefined {
    if (this.open === undefined) this.open = pass;
    if (pass !== this.open || this.retired.has(file)) return undefined;
    this.failedNow.set(file, { reason, message });
    if (this.atOnce(reason)) return this.retire(file, reason, message, pass);
    return undefined;
  }

  /**
   * Pass `pass` begins: the open pass (when older) is judged. A file that failed and never decoded in it adds the
   * pass to its row of failures; `after` in a row retire it from the next pass on. Returns the files retired now.
   */
  beginPass(pass: number): RetiredFile[] {
    if (this.open !== undefined && pass <= this.open) return [];
    const judged = this.open;
    this.open = pass;
    if (judged === undefined) return [];
    const newly: RetiredFile[] = [];
    const before = this.suspects.size;
    for (const file of this.suspects.keys()) {
      if (this.succeededNow.has(stableHash(file))) this.suspects.delete(file);
    }
    if (this.suspects.size !== before || this.failedNow.size > 0) this.changeCount += 1;
    for (const [file, { reason, message }] of this.failedNow) {
      if (this.succeededNow.has(stableHash(file))) continue;
      const suspect = this.suspects.get(file) ?? { file, reason, message, passes: [] };
      suspect.reason = reason;
      suspect.message = message;
      suspect.passes.push(judged);
      if (this.after > 0 && suspect.passes.length >= this.after) {
        const entry: RetiredFile = {
          file,
          reason,
          message,
          passes: suspect.passes,
          fromPass: judged + 1,
          rule: "passes",
        };
        this.retired.set(file, entry);
        this.suspects.delete(file);
        newly.push(entry);
      } else {
        this.suspects.set(file, suspect);
      }
    }
    this.failedNow.clear();
    this.succeededNow.clear();
    return newly;
  }

  /** The state as plain JSON; `open` (the pass being read) for checkpoints, left out for a person's file. */
  toJSON(withOpen = true): RetiredState {
    const state: RetiredState = {
      version: 1,
      retired: this.entries().map((e) => ({ ...e, passes: [...e.passes] })),
      suspects: this.suspectFiles().map((s) => ({ ...s, passes: [...s.passes] })),
    };
    if (withOpen && this.open !== undefined) {
      const hashes = Uint32Array.from([...this.succeededNow].sort((a, b) => a - b));
      state.open = {
        pass: this.open,
        failed: [...this.failedNow].map(([file, f]) => ({ file, ...f })),
        succeeded: Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength).toString("base64"),
      };
    }
    return state;
  }

  /**
   * Takes over a saved state: `bookkeeping` (suspects and the open pass, e.g. a checkpoint's) and `retired` (the
   * retired list, e.g. the run directory's file, which a person may have edited to give a file another chance).
   * Throws a clear error for a malformed state.
   */
  restore(bookkeeping: unknown, retired: unknown = bookkeeping): this {
    const b = checkState(bookkeeping, "bookkeeping");
    const r = checkState(retired, "retired list");
    this.retired.clear();
    for (const e of r.retired) this.retired.set(e.file, { ...e, passes: [...e.passes] });
    this.suspects.clear();
    for (const s of b.suspects)
      if (!this.retired.has(s.file)) this.suspects.set(s.file, { ...s, passes: [...s.passes] });
    this.failedNow.clear();
    this.succeededNow.clear();
    this.open = b.open?.pass;
    if (b.open) {
      for (const f of b.open.failed) this.failedNow.set(f.file, { reason: f.reason, message: f.message });
      const bytes = Buffer.from(b.open.succeeded, "base64");
      const hashes = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4));
      for (const h of Uint32Array.from(hashes)) this.succeededNow.add(h);
    }
    return this;
  }
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null;
const isPassList = (x: unknown): boolean => Array.isArray(x) && x.every((p) => Number.isInteger(p));
const isEntry = (x: unknown): boolean =>
  isRecord(x) &&
  typeof x.file === "string" &&
  typeof x.reason === "string" &&
  typeof x.message === "string" &&
  isPassList(x.passes);

function checkState(value: unknown, what: string): RetiredState {
  const v = value as Partial<RetiredState> | null;
  const ok =
    isRecord(v) &&
    v.version === 1 &&
    Array.isArray(v.retired ?? []) &&
    (v.retired ?? []).every((e) => isEntry(e) && Number.isInteger(e.fromPass)) &&
    Array.isArray(v.suspects ?? []) &&
    (v.suspects ?? []).every(isEntry) &&
    (v.open === undefined ||
      (isRecord(v.open) &&
        Number.isInteger(v.open.pass) &&
        Array.isArray(v.open.failed) &&
        typeof v.open.succeeded === "string"));
  if (!ok) {
    throw new Error(
      `the ${what} is not a version 1 {"retired": [{file, reason, message, passes, fromPass}], "suspects": [...]} object`,
    );
  }
  return {
    version: 1,
    retired: (v.retired ?? []).map((e) => ({ ...e, rule: e.rule === "at-once" ? "at-once" : "passes" })),
    suspects: v.suspects ?? [],
    ...(v.open ? { open: v.open } : {}),
  };
}
