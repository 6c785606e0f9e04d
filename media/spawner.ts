/**
 * The spawner: a small Node process (media/spawner-process.ts) that starts capture runs' processes on our behalf.
 *
 * Starting a process from a big one is not free on Linux: the fork copies the parent's page tables and
 * write-protects its memory, so each spawn costs the parent's main thread time that grows with its RSS, and its
 * memory then takes copy-on-write faults. Measured here (Node 20, 2 cores, idle): ~0.7 ms per spawn at 50 MB RSS,
 * ~11 ms at 550 MB (a training run's size), ~32 ms at 1.5 GB; through the spawner (~40 MB) it stays under 0.5 ms
 * whatever our size. The spawner itself costs a Node start (~40 ms idle, several times that on a loaded machine)
 * and ~40 MB, so it is started only once our RSS passes SPAWNER_MIN_RSS (200 MB). There a spawn costs ~4 ms (the
 * line through the figures above; a re-run of the spawn() call alone under load average 12 gave the same rise:
 * median 70 ms at 80 MB, 140 ms at 200 MB, ~220 ms at 300-500 MB), so the spawner pays back within a few dozen runs,
 * which a process that large (TensorFlow.js loaded: a training, embedding or prepare job) always makes. A one-shot
 * `vatt probe` (51 MB peak RSS) never would: spawning directly took its wall time from 1.37 s to 0.86 s (median of
 * 15 interleaved runs under load average ~16, bare `node -e 0` 0.47 s). It opens our capture files through
 * /proc/PID/fd, so it is used on Linux only; elsewhere, or if it cannot work, runs spawn directly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { fileURLToPath } from "node:url";
import type { SupervisedChild } from "./process.js";
import type { KillRequest, SpawnerMessage, SpawnRequest } from "./spawner-process.js";

/** Who starts a capture run's process: see `Spawner.get`. */
export type SpawnerMode = "auto" | "always" | "never";

/** Our resident size from which "auto" starts the spawner (see the file comment). */
export const SPAWNER_MIN_RSS = 200 * 2 ** 20;

const SPAWNER_ENTRY = new URL("./spawner-process.js", import.meta.url);

/** A process the spawner runs for us, with the ChildProcess surface `superviseProcess` uses. */
export class RemoteChild extends EventEmitter implements SupervisedChild {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly stdin = null;
  readonly stderr = new EventEmitter();
  /** Bytes written to each output, from the spawner once the process has exited. */
  outputSizes: number[] | undefined;
  constructor(
    private readonly spawner: Spawner,
    readonly id: number,
  ) {
    super();
  }
  kill(signal: NodeJS.Signals): boolean {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    this.spawner.kill(this.id, signal);
    return true;
  }
  settle(message: SpawnerMessage): void {
    if (message.stderr !== undefined) this.stderr.emit("data", Buffer.from(message.stderr, "utf8"));
    else if (message.close) {
      this.outputSizes = message.sizes;
      this.exitCode = message.code === null || message.code === undefined ? null : Number(message.code);
      this.signalCode = message.signal ?? null;
      this.emit("close", this.exitCode, this.signalCode);
    } else if (message.error !== undefined || message.openFailed !== undefined) {
      const err: NodeJS.ErrnoException = new Error(message.error ?? message.openFailed);
      if (typeof message.code === "string") err.code = message.code;
      this.emit("error", err);
    }
  }
}

export class Spawner {
  private readonly proc: ChildProcess;
  private readonly running = new Map<number, RemoteChild>();
  private nextId = 0;
  /** Set when the spawner cannot do its job here (e.g. /proc/PID/fd cannot be opened): spawn directly from now on. */
  static broken = false;
  private static current: Spawner | undefined;

  /**
   * The spawner to start a run with, or undefined to spawn directly: "never"; "always" (Linux); "auto": the running
   * one, else a new one once this process is large enough for the fork to cost more than the spawner's start.
   */
  static get(mode: SpawnerMode = "auto"): Spawner | undefined {
    if (mode === "never" || Spawner.broken || process.platform !== "linux") return undefined;
    if (!Spawner.current && (mode === "always" || process.memoryUsage.rss() >= SPAWNER_MIN_RSS)) {
      try {
        Spawner.current = new Spawner();
      } catch {
        Spawner.broken = true;
      }
    }
    return Spawner.current;
  }

  private constructor() {
    // Without our NODE_OPTIONS: an --inspect or --cpu-prof meant for us is not for it.
    const { NODE_OPTIONS: _, ...env } = process.env;
    this.proc = spawn(process.execPath, [fileURLToPath(SPAWNER_ENTRY)], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      windowsHide: true,
      env,
    });
    this.proc.on("message", (m: SpawnerMessage) => {
      if (m.openFailed !== undefined) Spawner.broken = true;
      const child = this.running.get(m.id);
      if (!child) return;
      if (m.close || m.error !== undefined || m.openFailed !== undefined) this.forget(m.id);
      child.settle(m);
    });
    this.proc.on("error", () => {
      Spawner.broken = true;
    });
    this.proc.on("exit", () => {
      if (Spawner.current === this) Spawner.current = undefined;
      // Whatever it ran was killed with it (it kills its children when it loses us).
      for (const [id, child] of this.running) {
        this.forget(id);
        child.settle({ id, close: true, code: null, signal: "SIGKILL" });
      }
    });
    this.idle();
  }

  /** Starts `bin args` with stdout and fd 3, 4, ... writing into our open files `fds`. */
  start(bin: string, args: readonly string[], fds: readonly number[]): RemoteChild {
    const id = ++this.nextId;
    const child = new RemoteChild(this, id);
    this.running.set(id, child);
    if (this.running.size === 1) {
      // Keep our event loop alive while a run is out: its answer comes over the channel.
      this.proc.ref();
      this.proc.channel?.ref();
    }
    const outs = fds.map((fd) => `/proc/${process.pid}/fd/${fd}`);
    this.send({ id, bin, args, cwd: process.cwd(), outs } satisfies SpawnRequest, id);
    return child;
  }

  kill(id: number, signal: NodeJS.Signals): void {
    this.send({ kill: id, signal } satisfies KillRequest, undefined);
  }

  private send(message: SpawnRequest | KillRequest, id: number | undefined): void {
    const failed = () => {
      const child = id === undefined ? undefined : this.running.get(id);
      if (id === undefined || !child) return;
      this.forget(id);
      child.settle({ id, error: "the spawner process is gone", code: "ESPAWNER" });
    };
    try {
      if (!this.proc.connected) {
        failed();
        return;
      }
      this.proc.send(message, (err) => {
        if (err) failed();
      });
    } catch {
      failed();
    }
  }

  private forget(id: number): void {
    this.running.delete(id);
    if (this.running.size === 0) this.idle();
  }

  /** With nothing running, the spawner must not keep us alive; it exits when we do. */
  private idle(): void {
    this.proc.unref();
    this.proc.channel?.unref();
  }
}
