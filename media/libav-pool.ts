/**
 * Worker threads that decode clips with FFmpeg's libraries in this process (media/libav.ts), so decoding runs
 * beside the training step instead of in one ffmpeg process per clip.
 *
 * A thin user of core/worker-pool.ts: every job has a time limit (30 s by default) and may be cancelled, a job past
 * its limit gets its thread stopped and replaced, and idle threads do not keep the process alive. Errors come back
 * as MediaErrors naming the file; a clip the decoder cannot take comes back as LeftToFfmpeg.
 */
import { availableParallelism } from "node:os";
import { WorkerPool, WorkerPoolError } from "../core/worker-pool.js";
import type { LibavDecodeJob, LibavDecodeResult } from "./libav-input.js";
import type { WorkerReply, WorkerRequest } from "./libav-worker.js";
import type { MediaInfo } from "./probe.js";
import { MediaError } from "./process.js";

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

  constructor(size: number) {
    this.pool = new WorkerPool({
      url: workerUrl,
      size,
      threadName: "decoding thread",
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

  /** Stops every worker; jobs still queued or running fail as cancelled. */
  close(): Promise<void> {
    return this.pool.close();
  }

  private async submit(request: WorkerRequest, file: string, opts: JobOptions): Promise<unknown> {
    let reply: WorkerReply;
    try {
      reply = await this.pool.run(request, { timeoutMs: opts.timeoutMs ?? 30_000, signal: opts.signal });
    } catch (err) {
      if (!(err instanceof WorkerPoolError)) throw err;
      throw new MediaError(`decode of '${file}': ${err.message}`, file, err.kind);
    }
    if (reply.ok) return reply.result;
    if (reply.kind === "unsupported") throw new LeftToFfmpeg(reply.message);
    throw new MediaError(reply.message, file, reply.kind);
  }
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

let shared: LibavPool | undefined;

/**
 * The process's decoding pool, made on first use with `workers` threads and grown when a later caller asks for more.
 * The default leaves one core to the thread that trains: on the demo (2 cores) one decoding thread gave 360-373
 * examples/s against 342-352 with two, which took CPU from the training step.
 */
export function libavPool(workers = Math.max(1, availableParallelism() - 1)): LibavPool {
  shared ??= new LibavPool(workers);
  shared.grow(workers);
  return shared;
}
