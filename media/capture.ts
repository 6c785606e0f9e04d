/**
 * Runs whose outputs are captured whole in files instead of drained from pipes: `runMediaToolCaptured`, and the
 * capture files it writes into (already unlinked, on tmpfs when there is room, kept for reuse when sizes are known).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, fstatSync, openSync, readv, statfsSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MediaTool, mediaToolPath } from "./binaries.js";
import {
  MediaError,
  type RunOptions,
  runMediaToolOutputs,
  type SupervisedChild,
  superviseProcess,
} from "./process.js";
import { Spawner, type SpawnerMode } from "./spawner.js";

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
  /**
   * Who starts the process (media/spawner.ts): "auto" (default) the spawner once this process is large, "always"
   * the spawner (Linux), "never" this process.
   */
  spawner?: SpawnerMode;
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
 * Runs ffmpeg with stdout and `extraPipes` more outputs (fd 3, 4, ...) captured whole, then hands them to `use`
 * (outputs[0] = stdout, outputs[1] = fd 3, ...) and returns what it returns. The captures are released when `use`
 * settles, so `use` must copy out what it keeps. Same time limit, cancellation and errors as `runMediaTool`; a run
 * whose temp files ran out of room is run again through pipes. On Linux a large caller has the process started by
 * the spawner (media/spawner.ts), so it pays nothing for the fork.
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
  const spawner = Spawner.get(opts.spawner);
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
