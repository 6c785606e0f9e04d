/**
 * The soak's chaos on the data folder and the run directory: each action does one thing a real disk or a careless
 * person does to a running trainer, and returns a line saying what it did. Picks are drawn from a seeded random
 * source, so a seed replays the same choices (their timing against the trainer still varies).
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, copyFileSync, readFileSync, readlinkSync, renameSync, statSync } from "node:fs";
import { open, rm, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { descendants, entries } from "./probe.js";

export interface Rng {
  next(): number;
  int(n: number): number;
}

/** mulberry32: small, seeded, good enough to pick actions. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

export interface PoolRow {
  clip: string;
  labels: string;
  /** end - start of the row: the clip's length. */
  seconds: number;
}

/** Rows of a synthetic AudioSet folder (both splits) with their clip files, to copy in as new data. */
export function poolRows(dir: string): PoolRow[] {
  const out: PoolRow[] = [];
  for (const split of ["balanced_train", "eval"]) {
    for (const line of readFileSync(join(dir, `${split}_segments.csv`), "utf8").split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const m = /^([^,]+), ([\d.]+), ([\d.]+), "([^"]*)"$/.exec(line);
      if (!m) continue;
      const seconds = Number(m[3]) - Number(m[2]);
      out.push({ clip: join(dir, "clips", `${m[1]}_${Number(m[2])}.mp4`), labels: m[4], seconds });
    }
  }
  return out;
}

export class DataChaos {
  private added = 0;
  constructor(
    private readonly data: string,
    private readonly pool: PoolRow[],
    private readonly random: Rng,
  ) {}

  private clips(): string[] {
    return entries(join(this.data, "clips"))
      .filter((n) => n.endsWith(".mp4"))
      .map((n) => join(this.data, "clips", n));
  }

  /** A clip the trainer (or its decoders) has open right now, else any clip. */
  private victim(trainerPid: number | undefined): { file: string; open: boolean } | undefined {
    const clips = this.clips();
    if (clips.length === 0) return undefined;
    if (trainerPid !== undefined) {
      const open = new Set<string>();
      for (const pid of [trainerPid, ...descendants(trainerPid)]) {
        for (const fd of entries(`/proc/${pid}/fd`)) {
          try {
            const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
            if (clips.includes(target)) open.add(target);
          } catch {
            // closed meanwhile
          }
        }
      }
      if (open.size > 0) return { file: [...open][this.random.int(open.size)], open: true };
    }
    return { file: clips[this.random.int(clips.length)], open: false };
  }

  /** A new clip (copied in under a new id, written then renamed) and then its CSV row. */
  add(): string {
    const row = this.pool[this.random.int(this.pool.length)];
    this.added += 1;
    const id = `soak${String(this.added).padStart(7, "0")}`;
    const start = 10 * this.random.int(30);
    const file = join(this.data, "clips", `${id}_${start}.mp4`);
    copyFileSync(row.clip, `${file}.part`);
    renameSync(`${file}.part`, file);
    appendFileSync(
      join(this.data, "balanced_train_segments.csv"),
      `${id}, ${start.toFixed(3)}, ${(start + row.seconds).toFixed(3)}, "${row.labels}"\n`,
    );
    return `added ${id} (${row.labels})`;
  }

  async remove(pid: number | undefined): Promise<string> {
    const v = this.victim(pid);
    if (!v) return "delete: no clip left";
    await unlink(v.file).catch(() => {});
    return `deleted ${v.file}${v.open ? " (open in the trainer)" : ""}`;
  }

  async truncate(pid: number | undefined): Promise<string> {
    const v = this.victim(pid);
    if (!v) return "truncate: no clip left";
    const size = statSync(v.file, { throwIfNoEntry: false })?.size ?? 0;
    const to = Math.floor(size * this.random.next() * 0.9);
    await truncate(v.file, to).catch(() => {});
    return `truncated ${v.file} ${size} -> ${to} bytes${v.open ? " (open in the trainer)" : ""}`;
  }

  async garbage(pid: number | undefined): Promise<string> {
    const v = this.victim(pid);
    if (!v) return "garbage: no clip left";
    const size = statSync(v.file, { throwIfNoEntry: false })?.size ?? 4096;
    await writeFile(v.file, randomBytes(Math.max(64, size))).catch(() => {});
    return `overwrote ${v.file} with ${size} random bytes${v.open ? " (open in the trainer)" : ""}`;
  }

  malformedCsv(): string {
    const bad = [
      "broken-row-without-fields\n",
      'abc, not-a-number, 3.0, "/m/0vatt01"\n',
      'def, 1.000, 2.000, "/m/0vatt01\n', // unterminated quote
      ",,,\n",
      `${randomBytes(24).toString("latin1").replace(/\n/g, " ")}\n`,
    ];
    const line = bad[this.random.int(bad.length)];
    appendFileSync(join(this.data, "balanced_train_segments.csv"), line);
    return `appended a malformed CSV line ${JSON.stringify(line.trimEnd())}`;
  }
}

/** Writes `file` until the disk is full; returns the bytes written. */
export async function fillDisk(file: string): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const fh = await open(file, "w");
  let written = 0;
  try {
    for (;;) {
      const { bytesWritten } = await fh.write(chunk);
      written += bytesWritten;
      if (bytesWritten < chunk.length) break;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    await fh.close();
  }
  return written;
}

export async function unfill(file: string): Promise<void> {
  await rm(file, { force: true });
}
