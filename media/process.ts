/**
 * Running ffmpeg and ffprobe as child processes: a time limit and cancellation for each, and errors that name the
 * file and carry the tool's own message.
 *
 * Every process started here is killed when its time limit passes or its consumer cancels (AbortSignal), and is
 * always waited for, so none outlives its caller and none is left a zombie. Runs whose outputs are captured in
 * files (and the spawner that starts them for a large process) are in media/capture.ts and media/spawner.ts.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { type MediaTool, mediaToolPath } from "./binaries.js";

/** A failed ffmpeg/ffprobe run: names the input and carries the tool's own message. */
export class MediaError extends Error {
  constructor(
    message: string,
    /** The media file concerned, when there is one. */
    readonly file: string | undefined,
    /**
     * Machine-friendly kind: "missing", "invalid", "timeout", "cancelled", "failed", "spawn", or "crashed" (the file
     * crashed the in-process decoder's worker, media/libav-pool.ts).
     */
    readonly kind: "missing" | "invalid" | "timeout" | "cancelled" | "failed" | "spawn" | "crashed",
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
export interface SupervisedChild {
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
export function superviseProcess(
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
