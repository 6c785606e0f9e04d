/**
 * One trainer process of the soak (a "life"): `vatt pretrain --follow` spawned as its own process, its output
 * kept in a log file, its resources sampled, its metrics.jsonl lines read as they come.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { createInterface } from "node:readline";
import type { ResourceSample } from "./checks.js";

export interface Life {
  n: number;
  resume: boolean;
  pid: number;
  startedAt: number;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string[];
  printedResumeStep?: number;
  samples: ResourceSample[];
  /** How the soak ended it: "sigterm", "sigkill", "end" (the soak's own stop), or none (it died by itself). */
  endedBy?: string;
  /** Descendants seen at the last sample (checked for orphans after the exit). */
  lastDescendants: number[];
  log: WriteStream;
}

export function startLife(
  n: number,
  vattJs: string,
  args: string[],
  resume: boolean,
  logFile: string,
  env: NodeJS.ProcessEnv,
): Life {
  const full = ["pretrain", ...args, ...(resume ? ["--resume"] : [])];
  const child = spawn(process.execPath, [vattJs, ...full], { stdio: ["ignore", "pipe", "pipe"], env });
  const log = createWriteStream(logFile);
  log.write(`$ vatt ${full.join(" ")}\n`);
  const life: Life = {
    n,
    resume,
    pid: child.pid ?? -1,
    startedAt: Date.now(),
    child,
    exited: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal }))),
    stderr: [],
    samples: [],
    lastDescendants: [],
    log,
  };
  void life.exited.then((e) => {
    life.exit = e;
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on("line", (line) => {
      log.write(`${line}\n`);
      if (stream === child.stderr) life.stderr.push(line);
      const m = /^vatt: resumed .* at step (\d+) /.exec(line);
      if (m) life.printedResumeStep = Number(m[1]);
    });
  }
  return life;
}

/** Waits for the exit, at most `ms`; true when it exited. */
export async function waitExit(life: Life, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([life.exited.then(() => true as const), timeout]);
  clearTimeout(timer);
  return done;
}
