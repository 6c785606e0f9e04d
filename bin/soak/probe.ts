/**
 * What the soak reads from outside the trainer: its resources from /proc, and checkpoints read back from disk
 * with the same reader --resume uses (model/checkpoint.ts's JSON check, model/safetensors.ts's decoder).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { readCheckpointInfo } from "../../model/checkpoint.js";
import { decodeSafetensors } from "../../model/safetensors.js";

/** Parent pid of every process, from /proc/N/stat. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(name), Number(rest[1]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every live descendant of `pid`. */
export function descendants(pid: number): number[] {
  const ppid = parents();
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length) {
    const p = frontier.pop()!;
    for (const [child, parent] of ppid) {
      if (parent === p) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ProcSample {
  rssMB: number;
  fds: number;
  threads: number;
  children: number;
}

/** RSS, open fds, threads and descendant count of `pid`; undefined when it is gone. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
    const threads = Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { rssMB: Math.round(rss), fds, threads, children: descendants(pid).length };
  } catch {
    return undefined;
  }
}

/** Entries of a folder, [] when it cannot be read. */
export function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Files the process holds open under `prefix` (to tell its /dev/shm use from other processes'). */
export function openUnder(pid: number, prefix: string): number {
  let n = 0;
  for (const fd of entries(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(prefix)) n += 1;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/**
 * Reads one checkpoint folder back: the JSON passes the resume reader's checks, the safetensors decodes, every
 * tensor is finite, the optimiser's step is the folder's, and position.json parses. Throws on any failure; ENOENT
 * (rotated away meanwhile) is the caller's to tell apart.
 */
export async function verifyCheckpoint(dir: string, step: number): Promise<void> {
  const file = join(dir, "model.safetensors");
  const info = await readCheckpointInfo(file);
  if (info.optimizer?.step !== step)
    throw new Error(`optimizer step ${info.optimizer?.step} in a folder of step ${step}`);
  const bytes = await readFile(file);
  const { tensors } = decodeSafetensors(bytes, file);
  const names = Object.keys(tensors);
  if (names.length === 0) throw new Error("no tensors");
  for (const name of names) {
    const data = tensors[name].data;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new Error(`${name}[${i}] is ${data[i]}`);
    }
  }
  const position = JSON.parse(await readFile(join(dir, "position.json"), "utf8")) as { step?: number };
  if (position.step !== step) throw new Error(`position.json says step ${position.step}`);
}
