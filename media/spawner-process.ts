/**
 * The spawner process (media/spawner.ts starts it as `node spawner-process.js` with an IPC channel): it starts the
 * processes of capture runs on behalf of its parent, so that a large parent never pays for a fork.
 *
 * A request names the binary, its arguments and the parent's capture files as /proc/PARENT/fd/N paths, which it
 * opens for writing and hands to the process as stdout and fd 3, 4, ... Its answers carry the process's stderr as it
 * comes, and at the end its exit status and how many bytes it wrote to each output. When the parent goes away, it
 * kills what it started and exits.
 *
 * This file is an entry point only: nothing imports it but types.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, constants, openSync, readFileSync } from "node:fs";

/** Start `bin args` in `cwd`, stdout and fd 3, 4, ... writing into `outs` (paths of the parent's open files). */
export interface SpawnRequest {
  id: number;
  bin: string;
  args: readonly string[];
  cwd: string;
  outs: readonly string[];
}

/** Send `signal` to the process of request `kill`. */
export interface KillRequest {
  kill: number;
  signal: NodeJS.Signals;
}

/** One answer about request `id`: a piece of its stderr, a failure to start, or its end. */
export interface SpawnerMessage {
  id: number;
  stderr?: string;
  error?: string;
  code?: string | number | null;
  signal?: NodeJS.Signals | null;
  close?: boolean;
  /** With `close`: bytes the process wrote to each output (its final file offset; -1 where unknown). */
  sizes?: number[];
  /** The outputs could not be opened (e.g. /proc/PID/fd is not reachable here): the parent spawns directly. */
  openFailed?: string;
}

/** How far the process wrote into `fd`: our fds share its file offsets, so at its exit each offset is its size. */
function writtenTo(fd: number): number {
  try {
    const pos = /^pos:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
    return pos ? Number(pos[1]) : -1;
  } catch {
    return -1;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function serve(): void {
  const kids = new Map<number, ChildProcess>();
  const send = (m: SpawnerMessage) => {
    if (process.connected) process.send?.(m);
  };

  const start = (m: SpawnRequest) => {
    const fds: number[] = [];
    try {
      for (const p of m.outs) fds.push(openSync(p, constants.O_WRONLY));
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      send({ id: m.id, openFailed: messageOf(err) });
      return;
    }
    let open = true;
    const release = () => {
      if (!open) return;
      open = false;
      for (const fd of fds) closeSync(fd);
    };
    let child: ChildProcess;
    try {
      child = spawn(m.bin, m.args, {
        cwd: m.cwd,
        stdio: ["ignore", fds[0], "pipe", ...fds.slice(1)],
        windowsHide: true,
      });
    } catch (err) {
      release();
      send({ id: m.id, error: messageOf(err), code: (err as NodeJS.ErrnoException).code });
      return;
    }
    kids.set(m.id, child);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => send({ id: m.id, stderr: text }));
    child.on("error", (err: NodeJS.ErrnoException) => {
      kids.delete(m.id);
      release();
      send({ id: m.id, error: err.message, code: err.code });
    });
    child.on("close", (code, signal) => {
      kids.delete(m.id);
      const sizes = fds.map(writtenTo);
      release();
      send({ id: m.id, close: true, code, signal, sizes });
    });
  };

  process.on("message", (m: SpawnRequest | KillRequest) => {
    if ("kill" in m) kids.get(m.kill)?.kill(m.signal);
    else start(m);
  });
  process.on("disconnect", () => {
    for (const kid of kids.values()) kid.kill("SIGKILL");
    process.exit(0);
  });
}

if (process.send) serve();
