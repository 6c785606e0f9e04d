/**
 * Workers that decode clips with FFmpeg's libraries (media/libav.ts), so decoding runs beside the training step
 * instead of in one ffmpeg process per clip. They are child processes by default, so that a decoder that crashes on
 * a damaged file (a segfault, an abort in libav) costs that clip and not the run; threads of this process when asked
 * (`isolation: "thread"`, a little cheaper, but a crash ends the run and a hang leaves its thread behind).
 *
 * A thin user of core/worker-pool.ts: every job has a time limit (30 s by default) and may be cancelled, a job past
 * its limit gets its worker stopped (a child: killed) and replaced, and idle workers do not keep the process alive.
 * A job whose child crashed or hung is tried once more on a fresh child; a second crash or hang fails it with a
 * MediaError of kind "crashed" or "timeout" saying it happened twice. Errors come back as MediaErrors naming the
 * file; a clip the decoder cannot take comes back as LeftToFfmpeg.
 */
import { availableParallelism } from "node:os";
import { type Isolation, WorkerPool, WorkerPoolError } from "../core/worker-pool.js";
import type { LibavDecodeJob, LibavDecodeResult } from "./libav-input.js";
import type { WorkerReply, WorkerRequest } from "./libav-worker.js";
import type { MediaInfo } from "./probe.js";
import { MediaError } from "./process.js";

export type { Isolation } from "../core/worker-pool.js";

export interface JobOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A clip the in-process decoder leaves to an ffmpeg process (say a 10-bit or paletted picture): not a failure. */
export class LeftToFfmpeg extends Error {
  override name = "LeftToFfmpeg";
}

const workerUrl = new URL("./libav-worker.js", import.meta.url);

export class LibavPool {
  private readonly pool: WorkerPool<WorkerRequest, WorkerReply>;

  constructor(
    size: number,
    readonly isolation: Isolation = "process",
  ) {
    this.pool = new WorkerPool({
      url: workerUrl,
      size,
      isolation,
      workerName: `decoding ${isolation}`,
      poolName: "decoder pool",
    });
  }

  /** Lets the pool run up to `size` workers (it never shrinks). */
  grow(size: number): void {
    this.pool.grow(size);
  }

  decode(job: LibavDecodeJob, opts: JobOptions = {}): Promise<LibavDecodeResult> {
    return this.submit({ kind: "decode", job }, job.file, opts) as Promise<LibavDecodeResult>;
  }

  probe(file: string, opts: JobOptions = {}): Promise<MediaInfo> {
    return this.submit({ kind: "probe", file }, file, opts) as Promise<MediaInfo>;
  }

  /** Stops every worker and waits until each is gone; jobs still queued or running fail as cancelled. */
  close(): Promise<void> {
    return this.pool.close();
  }

  private async submit(request: WorkerRequest, file: string, opts: JobOptions): Promise<unknown> {
    const what = `${request.kind} of '${file}'`;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    let reply: WorkerReply;
    try {
      reply = await this.pool.run(request, { timeoutMs, signal: opts.signal });
    } catch (first) {
      if (!(first instanceof WorkerPoolError)) throw first;
      // A child that crashed or hung is gone: try once more on a fresh one, which tells a file that breaks the
      // decoder from a worker that broke by itself. A hung thread is still there, so a thread gets no second try.
      const again = this.isolation === "process" && (first.kind === "crashed" || first.kind === "timeout");
      if (!again) throw new MediaError(`${what}: ${first.message}`, file, first.kind);
      try {
        reply = await this.pool.run(request, { timeoutMs, signal: opts.signal, fresh: true });
      } catch (second) {
        if (!(second instanceof WorkerPoolError)) throw second;
        throw twice(what, file, timeoutMs, first, second);
      }
    }
    if (reply.ok) return reply.result;
    if (reply.kind === "unsupported") throw new LeftToFfmpeg(reply.message);
    throw new MediaError(reply.message, file, reply.kind);
  }
}

/**
 * The error of a job whose second try failed too: "'x.mp4' crashed the decoder (SIGSEGV) twice" or "hung the
 * decoder past its 30 s limit twice" when both tries did (kind "crashed" or "timeout", the second's).
 */
function twice(
  what: string,
  file: string,
  timeoutMs: number,
  first: WorkerPoolError,
  second: WorkerPoolError,
): MediaError {
  if (second.kind !== "crashed" && second.kind !== "timeout") {
    return new MediaError(`${what}: ${second.message} (the first try: ${first.message})`, file, second.kind);
  }
  const hung = `hung the decoder past its ${timeoutMs / 1000} s limit`;
  const did =
    first.kind === "timeout" && second.kind === "timeout"
      ? `${hung} twice`
      : first.kind === "crashed" && second.kind === "crashed"
        ? `crashed the decoder (${first.death === second.death ? first.death : `${first.death}, then ${second.death}`}) twice`
        : first.kind === "timeout"
          ? `${hung}, then crashed it (${second.death})`
          : `crashed the decoder (${first.death}), then ${hung.replace("the decoder", "it")}`;
  return new MediaError(`'${file}' ${did}, the second time in a fresh decoding process`, file, second.kind);
}

/** Whether node-av's binding loads here, and why not when it does not; checked once. */
let status: Promise<{ available: boolean; reason?: string }> | undefined;

export function libavStatus(): Promise<{ available: boolean; reason?: string }> {
  status ??= import("node-av/lib").then(
    () => ({ available: true }),
    (err: Error) => ({ available: false, reason: `node-av did not load: ${err.message.split("\n")[0]}` }),
  );
  return status;
}

const shared = new Map<Isolation, LibavPool>();

/**
 * The process's decoding pool of that isolation, made on first use with `workers` workers and grown when a later
 * caller asks for more. The default leaves one core to the thread that trains: on the demo (2 cores) one decoding
 * thread gave 360-373 examples/s against 342-352 with two, which took CPU from the training step.
 */
export function libavPool(
  workers = Math.max(1, availableParallelism() - 1),
  isolation: Isolation = "process",
): LibavPool {
  let pool = shared.get(isolation);
  if (!pool) {
    pool = new LibavPool(workers, isolation);
    shared.set(isolation, pool);
  }
  pool.grow(workers);
  return pool;
}
