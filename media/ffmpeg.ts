/**
 * A small typed wrapper around the ffmpeg and ffprobe binaries: where to find them, how to run them with a time
 * limit and cancellation, and errors that name the file and carry ffmpeg's own message.
 *
 * Every process started here is killed when its time limit passes or its consumer cancels (AbortSignal), and is
 * always waited for, so none outlives its caller and none is left a zombie.
 */
import { type ChildProcess, type ChildProcessByStdio, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { closeSync, fstatSync, openSync, readv, statfsSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";

const require = createRequire(import.meta.url);

export type MediaTool = "ffmpeg" | "ffprobe";

/**
 * Finds a binary. Order:
 * 1. `FFMPEG_PATH` / `FFPROBE_PATH`: the user's explicit choice always wins.
 * 2. The npm-shipped static builds (`@ffmpeg-installer/ffmpeg`, `@ffprobe-installer/ffprobe`): installed by
 *    `npm ci`, pinned by the lockfile, and a static binary starts in ~10 ms against ~130 ms for a dynamically
 *    linked system build, which matters when one process runs per clip.
 * 3. `ffmpeg` / `ffprobe` on the system PATH.
 */
export function mediaToolPath(tool: MediaTool): string {
  const fromEnv = process.env[tool === "ffmpeg" ? "FFMPEG_PATH" : "FFPROBE_PATH"];
  if (fromEnv) return fromEnv;
  try {
    const pkg = tool === "ffmpeg" ? "@ffmpeg-installer/ffmpeg" : "@ffprobe-installer/ffprobe";
    const found = (require(pkg) as { path?: string }).path;
    if (found) return found;
  } catch {
    // Not installed for this platform: fall through to PATH.
  }
  return tool;
}

/** A failed ffmpeg/ffprobe run: names the input and carries the tool's own message. */
export class MediaError extends Error {
  constructor(
    message: string,
    /** The media file concerned, when there is one. */
    readonly file: string | undefined,
    /** Machine-friendly kind: "missing", "invalid", "timeout", "cancelled", "failed", "spawn". */
    readonly kind: "missing" | "invalid" | "timeout" | "cancelled" | "failed" | "spawn",
    /** The tail of the tool's stderr. */
    readonly stderr = "",
  ) {
    super(message);
    this.name = "MediaError";
  }
}

export interface RunOptions {
  /** Kill the process after this many milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Cancels the run: the process is killed and the promise rejects with kind "cancelled". */
  signal?: AbortSignal;
  /** The file the run concerns, named in errors. */
  file?: string;
  /** Bytes written to the process's stdin (then closed): one buffer, or a stream of them written with backpressure. */
  stdin?: Uint8Array | AsyncIterable<Uint8Array>;
}

type MediaProcess = ChildProcessByStdio<Writable, Readable, Readable>;

/** What `superviseProcess` needs of a child: a ChildProcess, or a `RemoteChild` run by the spawner process. */
interface SupervisedChild {
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  readonly stdin: Writable | null;
  readonly stderr: { on(event: "data", listener: (chunk: Buffer) => void): unknown };
  kill(signal: NodeJS.Signals): boolean;
  on(event: "error", listener: (err: NodeJS.ErrnoException) => void): unknown;
  on(event: "close", listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
}

/** Keeps the last `limit` bytes of stderr: enough for ffmpeg's own error, bounded for chatty runs. */
class StderrTail {
  private text = "";
  constructor(private readonly limit = 8192) {}
  push(chunk: Buffer): void {
    this.text += chunk.toString("utf8");
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.trim();
  }
}

/** The most telling line of ffmpeg's stderr: the last non-empty one, which is where it states why it stopped. */
export function ffmpegReason(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines.at(-1) ?? "no message";
}

function describe(tool: MediaTool, file: string | undefined): string {
  return file ? `${tool} failed on '${file}'` : `${tool} failed`;
}

function spawnTool(tool: MediaTool, args: readonly string[], extraPipes = 0): MediaProcess {
  const stdio: "pipe"[] = Array.from({ length: 3 + extraPipes }, () => "pipe");
  return spawn(mediaToolPath(tool), args, { stdio, windowsHide: true }) as MediaProcess;
}

/**
 * Owns one child process's end of life: a time limit, an abort signal, and one settle. Whatever happens, the child
 * is killed (SIGKILL) unless it already exited, and listeners are removed.
 */
function superviseProcess(
  tool: MediaTool,
  child: SupervisedChild,
  opts: RunOptions,
  onSettle: (err: MediaError | undefined, code: number | null) => void,
): { stderr: StderrTail } {
  const stderr = new StderrTail();
  let settled = false;
  let failure: MediaError | undefined;
  const timeoutMs = opts.timeoutMs ?? 60_000;

  const kill = (err: MediaError) => {
    if (failure === undefined) failure = err;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const timer = setTimeout(() => {
    kill(
      new MediaError(
        `${describe(tool, opts.file)}: timed out after ${timeoutMs} ms and was killed`,
        opts.file,
        "timeout",
        stderr.toString(),
      ),
    );
  }, timeoutMs);
  const onAbort = () =>
    kill(
      new MediaError(`${describe(tool, opts.file)}: cancelled`, opts.file, "cancelled", stderr.toString()),
    );
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });

  const settle = (err: MediaError | undefined, code: number | null) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    onSettle(err, code);
  };

  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  child.on("error", (err: NodeJS.ErrnoException) => {
    const hint =
      err.code === "ENOENT"
        ? ` (binary '${mediaToolPath(tool)}' not found: run 'npm ci', or set ${tool === "ffmpeg" ? "FFMPEG_PATH" : "FFPROBE_PATH"})`
        : "";
    settle(new MediaError(`could not start ${tool}: ${err.message}${hint}`, opts.file, "spawn"), null);
  });
  // 'close' fires after the process exited AND its stdio closed: the child is reaped, output complete.
  child.on("close", (code, signal) => {
    if (failure) return settle(failure, code);
    if (code === 0) return settle(undefined, code);
    const tail = stderr.toString();
    const why = signal ? `killed by ${signal}` : ffmpegReason(tail);
    settle(new MediaError(`${describe(tool, opts.file)}: ${why}`, opts.file, classify(tail), tail), code);
  });
  // EPIPE on stdin when the tool exits early is expected; the exit status tells the real story.
  const stdin = child.stdin;
  stdin?.on("error", () => {});
  if (!stdin) {
    if (opts.stdin)
      kill(new MediaError(`${describe(tool, opts.file)}: no stdin to write to`, opts.file, "failed"));
  } else if (opts.stdin instanceof Uint8Array) stdin.end(opts.stdin);
  else if (opts.stdin) {
    feedStdin(stdin, opts.stdin).catch((err: Error) =>
      kill(
        new MediaError(`${describe(tool, opts.file)}: its input failed: ${err.message}`, opts.file, "failed"),
      ),
    );
  }
  return { stderr };
}

/** Writes a stream of buffers into a child's stdin, waiting for 'drain' so memory stays bounded. */
async function feedStdin(stdin: Writable, source: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    for await (const chunk of source) {
      if (stdin.destroyed) return;
      if (!stdin.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            stdin.off("drain", done);
            stdin.off("close", done);
            resolve();
          };
          stdin.on("drain", done);
          stdin.on("close", done);
        });
      }
    }
  } finally {
    if (!stdin.destroyed) stdin.end();
  }
}

function classify(stderr: string): MediaError["kind"] {
  if (/No such file or directory/i.test(stderr)) return "missing";
  if (/Invalid data found|moov atom not found|could not find codec parameters|End of file/i.test(stderr)) {
    return "invalid";
  }
  return "failed";
}

/** Runs ffmpeg or ffprobe to completion and returns everything it wrote to stdout. */
export function runMediaTool(
  tool: MediaTool,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawnTool(tool, args);
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    superviseProcess(tool, child, opts, (err) => (err ? reject(err) : resolve(Buffer.concat(chunks))));
  });
}

/**
 * Runs ffmpeg and yields its stdout in pieces of exactly `chunkBytes` (the last may be shorter), e.g. one raw
 * video frame each. Pull-based: the process is paused while the consumer is busy (pipe backpressure), and is
 * killed as soon as the consumer stops iterating (break, throw, or the signal).
 */
export async function* streamMediaTool(
  tool: MediaTool,
  args: readonly string[],
  chunkBytes: number,
  opts: RunOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const child = spawnTool(tool, args);
  let finished: { err: MediaError | undefined } | undefined;
  const done = new Promise<void>((resolve) => {
    superviseProcess(tool, child, opts, (err) => {
      finished = { err };
      resolve();
    });
  });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= chunkBytes) {
        const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        yield all.subarray(0, chunkBytes);
        const rest = all.subarray(chunkBytes);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
      }
    }
    await done;
    if (finished?.err) throw finished.err;
    if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await done;
  }
}

/** What `runMediaToolOutputs` collected: stdout and each extra output pipe (fd 3, fd 4, ...). */
export interface MediaToolOutputs {
  stdout: Buffer;
  /** `pipes[0]` is what the tool wrote to fd 3 (e.g. `-f f32le pipe:3`), `pipes[1]` fd 4, and so on. */
  pipes: Buffer[];
}

/**
 * Like `runMediaTool`, but opens `extraPipes` more output pipes on fd 3, 4, ... so that one ffmpeg process can write
 * several outputs at once (e.g. video frames on `pipe:1` and audio on `pipe:3`): one decode of the input instead of
 * two. All pipes are drained concurrently, so a tool that interleaves its outputs never blocks on a full pipe.
 */
export function runMediaToolOutputs(
  tool: MediaTool,
  args: readonly string[],
  extraPipes: number,
  opts: RunOptions = {},
): Promise<MediaToolOutputs> {
  return new Promise((resolve, reject) => {
    const child = spawnTool(tool, args, extraPipes);
    const collect = (stream: Readable): Buffer[] => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      // A reader error (e.g. the fd closed early) is reported through the exit status, not thrown here.
      stream.on("error", () => {});
      return chunks;
    };
    const stdoutChunks = collect(child.stdout);
    const pipeChunks = Array.from({ length: extraPipes }, (_, i) => collect(child.stdio[3 + i] as Readable));
    superviseProcess(tool, child, opts, (err) =>
      err
        ? reject(err)
        : resolve({ stdout: Buffer.concat(stdoutChunks), pipes: pipeChunks.map((c) => Buffer.concat(c)) }),
    );
  });
}

/**
 * One output of a finished run, wherever it was kept: `size` bytes that `readInto` copies out, like preadv, so a
 * caller can scatter them straight into the buffers it hands on (e.g. frame after frame, skipping headers).
 */
export interface CapturedOutput {
  readonly size: number;
  /** Fills `buffers` in order with the bytes from `position` on; returns how many it copied (short only at the end). */
  readInto(buffers: readonly Uint8Array[], position: number): Promise<number>;
}

export interface CaptureOptions extends RunOptions {
  /**
   * Where the outputs go. "file" (default where it works): each output fd is an already-unlinked temp file (tmpfs
   * when there is room), read once after the run: no pipe traffic, no chunk buffers, no concatenation. "pipe": the
   * outputs are drained from pipes into memory (the fallback, e.g. where an open file cannot be unlinked).
   */
  capture?: "file" | "pipe";
}

/** The folder capture files are made in: /dev/shm when it has room (memory, no disk), else the temp dir. */
let captureFolder: string | undefined;
/** Set when an open capture file could not be unlinked (Windows): this process then captures through pipes. */
let fileCaptureBroken = false;
let captureCounter = 0;

/** tmpfs with less room than this (e.g. Docker's 64 MiB /dev/shm) is passed over for the temp dir. */
const MIN_SHM_BYTES = 1 << 30;

function captureDir(): string {
  if (captureFolder === undefined) {
    captureFolder = tmpdir();
    if (process.platform === "linux") {
      try {
        const fs = statfsSync("/dev/shm");
        if (fs.bavail * fs.bsize >= MIN_SHM_BYTES) captureFolder = "/dev/shm";
      } catch {
        // No /dev/shm: the temp dir it is.
      }
    }
  }
  return captureFolder;
}

/** An open, already-unlinked temp file (nothing to clean up but the fd), or undefined where that cannot be done. */
function openCaptureFile(): number | undefined {
  const path = join(captureDir(), `vatt-capture-${process.pid}-${++captureCounter}`);
  const fd = openSync(path, "wx+", 0o600);
  try {
    unlinkSync(path);
    return fd;
  } catch {
    closeSync(fd);
    fileCaptureBroken = true;
    try {
      unlinkSync(path);
    } catch {
      // Removed when the process holding it lets go; nothing more to do here.
    }
    return undefined;
  }
}

/**
 * Capture files kept open for the next run instead of closed, when the spawner ran the process and reported how much
 * it wrote (so bytes an earlier run left past that are never read). A run then rewrites pages the file already has:
 * closing a 6 MB tmpfs file and filling a fresh one cost ~2 ms of kernel time per clip on our side alone (page
 * freeing and zeroing), besides ffmpeg's. At most CAPTURE_POOL files of at most CAPTURE_POOL_MAX_BYTES each.
 */
const capturePool: number[] = [];
const CAPTURE_POOL = 8;
const CAPTURE_POOL_MAX_BYTES = 64 * 2 ** 20;

function releaseCaptureFile(fd: number, reusable: boolean): void {
  if (reusable && capturePool.length < CAPTURE_POOL && fstatSync(fd).size <= CAPTURE_POOL_MAX_BYTES) {
    capturePool.push(fd);
  } else {
    closeSync(fd);
  }
}

/** Wraps readv so that it keeps going across short reads and the kernel's cap on buffers per call. */
function fileOutput(fd: number, size: number): CapturedOutput {
  const readOnce = (bufs: Uint8Array[], position: number): Promise<number> =>
    new Promise((resolve, reject) =>
      readv(fd, bufs, position, (err, bytes) => (err ? reject(err) : resolve(bytes))),
    );
  return {
    size,
    async readInto(buffers, position) {
      // Never past `size`: a kept capture file may hold an earlier run's bytes after this run's output.
      let room = Math.max(0, size - position);
      let pending: Uint8Array[] = [];
      for (const b of buffers) {
        if (room === 0) break;
        if (b.length === 0) continue;
        pending.push(b.length <= room ? b : b.subarray(0, room));
        room -= Math.min(b.length, room);
      }
      let done = 0;
      while (pending.length > 0 && position + done < size) {
        const got = await readOnce(pending.slice(0, 512), position + done);
        if (got === 0) break;
        done += got;
        // Drop the buffers this read filled; a part-filled one continues from where it stopped.
        let skip = got;
        let i = 0;
        while (i < pending.length && skip >= pending[i].length) skip -= pending[i++].length;
        pending = pending.slice(i);
        if (skip > 0) pending[0] = pending[0].subarray(skip);
      }
      return done;
    },
  };
}

function memoryOutput(data: Buffer): CapturedOutput {
  return {
    size: data.length,
    async readInto(buffers, position) {
      let at = position;
      for (const b of buffers) {
        if (at >= data.length) break;
        const n = Math.min(b.length, data.length - at);
        b.set(data.subarray(at, at + n));
        at += n;
      }
      return at - position;
    },
  };
}

/**
 * The spawner: a small Node process that starts capture runs' processes on our behalf. Starting a process from a
 * big one is not free on Linux: the fork copies the parent's page tables and write-protects its memory, so each spawn
 * costs the parent's main thread time that grows with its RSS, and its memory then takes copy-on-write faults.
 * Measured here (Node 20, 2 cores): ~0.7 ms per spawn at 50 MB RSS, ~11 ms at 550 MB (a training run's size),
 * ~32 ms at 1.5 GB; through the spawner (~40 MB) it stays under 0.5 ms whatever our size. It opens our capture
 * files through /proc/PID/fd, so it is used on Linux only; elsewhere, or if it cannot work, runs spawn directly.
 */
const SPAWNER_SOURCE = `"use strict";
const { spawn } = require("node:child_process");
const { closeSync, constants, openSync, readFileSync } = require("node:fs");
const kids = new Map();
const send = (m) => { if (process.connected) process.send(m); };
process.on("message", (m) => {
  if (m.kill !== undefined) { const k = kids.get(m.kill); if (k) k.kill(m.signal); return; }
  const fds = [];
  try {
    for (const p of m.outs) fds.push(openSync(p, constants.O_WRONLY));
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    send({ id: m.id, openFailed: String(e && e.message) });
    return;
  }
  // Our fds share the child's file offsets: at its exit, each offset is how many bytes it wrote there.
  let open = true;
  const release = () => { if (open) { open = false; for (const fd of fds) closeSync(fd); } };
  const written = () => fds.map((fd) => {
    try {
      const pos = /^pos:\\s*(\\d+)/m.exec(readFileSync("/proc/self/fdinfo/" + fd, "utf8"));
      return pos ? Number(pos[1]) : -1;
    } catch { return -1; }
  });
  let child;
  try {
    child = spawn(m.bin, m.args, { cwd: m.cwd, stdio: ["ignore", fds[0], "pipe", ...fds.slice(1)], windowsHide: true });
  } catch (e) {
    release();
    send({ id: m.id, error: String(e && e.message), code: e && e.code });
    return;
  }
  kids.set(m.id, child);
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => send({ id: m.id, stderr: text }));
  child.on("error", (e) => { kids.delete(m.id); release(); send({ id: m.id, error: e.message, code: e.code }); });
  child.on("close", (code, signal) => {
    kids.delete(m.id);
    const sizes = written();
    release();
    send({ id: m.id, close: true, code, signal, sizes });
  });
});
process.on("disconnect", () => { for (const k of kids.values()) k.kill("SIGKILL"); process.exit(0); });
`;

interface SpawnerMessage {
  id: number;
  stderr?: string;
  error?: string;
  code?: string | number | null;
  signal?: NodeJS.Signals | null;
  close?: boolean;
  /** With `close`: bytes the process wrote to each output (its final file offset; -1 where unknown). */
  sizes?: number[];
  openFailed?: string;
}

/** A process the spawner runs for us, with the ChildProcess surface `superviseProcess` uses. */
class RemoteChild extends EventEmitter implements SupervisedChild {
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

class Spawner {
  private readonly proc: ChildProcess;
  private readonly running = new Map<number, RemoteChild>();
  private nextId = 0;
  /** Set when the spawner cannot do its job here (e.g. /proc/PID/fd cannot be opened): spawn directly from now on. */
  static broken = false;
  private static current: Spawner | undefined;

  static get(): Spawner | undefined {
    if (Spawner.broken || process.platform !== "linux") return undefined;
    if (!Spawner.current) {
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
    this.proc = spawn(process.execPath, ["-e", SPAWNER_SOURCE], {
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
    this.send({ id, bin, args, cwd: process.cwd(), outs }, id);
    return child;
  }

  kill(id: number, signal: NodeJS.Signals): void {
    this.send({ kill: id, signal }, undefined);
  }

  private send(message: object, id: number | undefined): void {
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

/**
 * Runs ffmpeg with stdout and `extraPipes` more outputs (fd 3, 4, ...) captured whole, then hands them to `use`
 * (outputs[0] = stdout, outputs[1] = fd 3, ...) and returns what it returns. The captures are released when `use`
 * settles, so `use` must copy out what it keeps. Same time limit, cancellation and errors as `runMediaTool`; a run
 * whose temp files ran out of room is run again through pipes. On Linux the process is started by the spawner (see
 * above), so a large caller pays nothing for the fork.
 */
export async function runMediaToolCaptured<T>(
  tool: MediaTool,
  args: readonly string[],
  extraPipes: number,
  opts: CaptureOptions,
  use: (outputs: CapturedOutput[]) => Promise<T>,
): Promise<T> {
  if ((opts.capture ?? "file") === "pipe" || fileCaptureBroken) {
    const out = await runMediaToolOutputs(tool, args, extraPipes, opts);
    return use([out.stdout, ...out.pipes].map(memoryOutput));
  }
  const fds: number[] = [];
  const spawner = Spawner.get();
  let reused = false;
  let sizes: number[] | undefined;
  try {
    for (let i = 0; i <= extraPipes; i++) {
      // Kept files only with the spawner: it reports the sizes, so what an earlier run left past them is never read.
      const kept = spawner ? capturePool.pop() : undefined;
      reused ||= kept !== undefined;
      const fd = kept ?? openCaptureFile();
      if (fd === undefined)
        return await runMediaToolCaptured(tool, args, extraPipes, { ...opts, capture: "pipe" }, use);
      fds.push(fd);
    }
    try {
      await new Promise<void>((resolve, reject) => {
        const remote = spawner?.start(mediaToolPath(tool), args, fds);
        const child: SupervisedChild =
          remote ??
          (spawn(mediaToolPath(tool), args, {
            stdio: ["pipe", fds[0], "pipe", ...fds.slice(1)],
            windowsHide: true,
          }) as ChildProcess as SupervisedChild);
        superviseProcess(tool, child, opts, (err) => {
          const known = remote?.outputSizes;
          if (known && known.length === fds.length && known.every((n) => n >= 0)) sizes = known;
          if (err) reject(err);
          else resolve();
        });
      });
    } catch (err) {
      if (spawner && Spawner.broken && err instanceof MediaError && err.kind === "spawn") {
        // The spawner cannot open our files here: this run (and all later ones) spawn directly.
        for (const fd of fds.splice(0)) closeSync(fd);
        return await runMediaToolCaptured(tool, args, extraPipes, opts, use);
      }
      if (err instanceof MediaError && /No space left on device/i.test(err.stderr)) {
        return await runMediaToolCaptured(tool, args, extraPipes, { ...opts, capture: "pipe" }, use);
      }
      throw err;
    }
    if (!sizes && reused) {
      // The spawner could not say how much was written to a kept file: run again, through pipes.
      return await runMediaToolCaptured(tool, args, extraPipes, { ...opts, capture: "pipe" }, use);
    }
    const known = sizes;
    return await use(fds.map((fd, i) => fileOutput(fd, known ? known[i] : fstatSync(fd).size)));
  } finally {
    for (const fd of fds) releaseCaptureFile(fd, sizes !== undefined);
  }
}
