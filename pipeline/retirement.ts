/**
 * The training stream's side of retiring failing files (core/retired.ts keeps the books): it hears every decode,
 * lets a pass's decodes finish before the next pass begins (so each pass is judged on all its windows, the same
 * way on every run and every resume), drops retired files' clips before they are decoded, and keeps
 * `RUN/retired-files.json` up to date (written whole to a temporary file, then renamed: a reader or a crash never
 * sees half of it).
 *
 * The file is what a person reads (which files, why, the passes they failed in; suspects that failed lately but
 * not yet often enough) and what `--resume` takes the retired list from: deleting an entry gives that file another
 * chance. The bookkeeping of the pass in progress travels with each checkpoint instead, since it must match the
 * checkpoint's data position for the resumed run to judge that pass as the first run did.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";
import type { ClipRef } from "../core/records.js";
import type { RetiredFile, RetiredFiles } from "../core/retired.js";
import type { DecodeOutcomes, DecodeSkip } from "./stream.js";

export const RETIRED_FILES = "retired-files.json";

export function retiredFilesPath(runDir: string): string {
  return join(runDir, RETIRED_FILES);
}

/** The run directory's retired list, or undefined when there is none. A malformed file is a clear error. */
export async function readRetiredFiles(runDir: string): Promise<unknown> {
  const path = retiredFilesPath(runDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${path} is not valid JSON (${(err as Error).message}): fix it, or delete it to give every retired file another chance`,
    );
  }
}

/** "failed in passes 0, 1, 2 (decode invalid)" */
export function describeRetired(e: RetiredFile): string {
  const passes = e.passes.length === 1 ? `pass ${e.passes[0]}` : `passes ${e.passes.join(", ")}`;
  const why = e.rule === "at-once" ? `retired at once on '${e.reason}'` : `failed in ${passes} (${e.reason})`;
  return `${e.file}: ${why}; not asked for from pass ${e.fromPass} on. ${e.message}`;
}

export class RetirementWatch implements DecodeOutcomes {
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private saved: number;
  private saving: Promise<void> = Promise.resolve();
  private saveFailed = false;

  /**
   * @param files the books (restored already when resuming)
   * @param runDir where `retired-files.json` is kept (none: nothing written)
   * @param log where "retired ..." lines go
   */
  constructor(
    readonly files: RetiredFiles,
    private readonly runDir?: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.saved = files.changes;
  }

  started(_ref: ClipRef): void {
    this.inFlight += 1;
  }

  succeeded(ref: ClipRef): void {
    this.files.succeeded(ref.path, ref.epoch);
    this.settle();
  }

  failed(ref: ClipRef, skip: DecodeSkip | undefined): void {
    if (skip) {
      const now = this.files.failed(ref.path, ref.epoch, skip.reason, skip.message);
      if (now) this.announce([now]);
    }
    this.settle();
  }

  /** Whether `ref` is to be dropped (its file is retired as of its pass). */
  drops(ref: ClipRef): boolean {
    return this.files.has(ref.path, ref.epoch);
  }

  /** Pass `pass` is about to be read: waits for the decodes of the last one, then judges it. */
  async beginPass(pass: number): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.announce(this.files.beginPass(pass));
  }

  /** Waits until the retired list on disk is the current one. */
  async flush(): Promise<void> {
    this.persist();
    await this.saving;
  }

  private settle(): void {
    this.inFlight -= 1;
    if (this.inFlight > 0) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const resolve of waiting) resolve();
  }

  private announce(newly: RetiredFile[]): void {
    for (const e of newly) {
      this.log(
        `vatt: retired ${describeRetired(e)}` +
          (this.runDir ? ` Listed in ${retiredFilesPath(this.runDir)}.` : ""),
      );
    }
    this.persist();
  }

  /** Writes the list when it changed (one write at a time, the latest state last). */
  private persist(): void {
    if (!this.runDir || this.files.changes === this.saved) return;
    this.saved = this.files.changes;
    const runDir = this.runDir;
    const text = `${JSON.stringify(this.files.toJSON(false), null, 2)}\n`;
    this.saving = this.saving.then(async () => {
      const path = retiredFilesPath(runDir);
      try {
        await writeFileAtomic(path, text); // an empty or partial temporary file left by ENOSPC is removed there
        if (this.saveFailed) this.log(`vatt: ${path} is up to date again`);
        this.saveFailed = false;
      } catch (err) {
        // The file is stale now, and --resume takes the retired list from it: the next pass (or the flush at the
        // end) must try again even when nothing else changes, or a file retired during a full disk would be
        // forgotten by the resumed run.
        this.saved = -1;
        if (this.saveFailed) return;
        this.saveFailed = true; // said once; training goes on and the write is retried at every pass
        this.log(
          `vatt: could not write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
            "retired files stay retired in this process; the write is tried again at every pass",
        );
      }
    });
  }
}
