/**
 * Worker threads that decode clips with FFmpeg's libraries in this process (media/libav.ts), so decoding runs
 * beside the training step instead of in one ffmpeg process per clip.
 *
 * Jobs wait in one queue and go to the first idle worker. Every job has a time limit and may be cancelled: a
 * queued job just leaves the queue; a running one is answered at once and its result thrown away when it comes
 * (a decode takes milliseconds); a job past its time limit gets its worker terminated and replaced. Workers do not
 * keep the process alive.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { LibavDecodeJob, LibavDecodeResult } from "./libav-input.js";
import type { WorkerReply, WorkerRequest } from "./libav-worker.js";
import type { MediaInfo } from "./probe.js";
import { MediaError } from "./process.js";

export interface JobOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Job {
  request: WorkerRequest;
  file: string;
  timeoutMs: number;
  signal?: AbortSignal;
  resolve: (value: unknown) => void;
  reject: (err: MediaError | LeftToFfmpeg) => void;
  settled: boolean;
  onAbort?: () => void;
}

/** A clip the in-process decoder leaves to an ffmpeg process (say a 10-bit or paletted picture): not a failure. */
export class LeftToFfmpeg extends Error {
  override name = "LeftToFfmpeg";
}

interface Slot {
  worker: Worker;
  /** Jobs posted to this worker, in the order it runs them; the first is running. */
  jobs: Job[];
  /** The time limit of the running job. */
  timer?: NodeJS.Timeout;
}

const workerUrl = new URL("./libav-worker.js", import.meta.url);

export class LibavPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private size: number) {}

  /** Lets the pool run up to `size` workers (it never shrinks). */
  grow(size: number): void {
    this.size = Math.max(this.size, size);
    this.pump();
  }

  decode(job: LibavDecodeJob, opts: JobOptions = {}): Promise<LibavDecodeResult> {
    return this.submit({ id: 0, kind: "decode", job }, job.file, opts) as Promise<LibavDecodeResult>;
  }

  probe(file: string, opts: JobOptions = {}): Promise<MediaInfo> {
    return this.submit({ id: 0, kind: "probe", file }, file, opts) as Promise<MediaInfo>;
  }

  /** Stops every worker; jobs still queued or running fail as cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) this.fail(job, "cancelled", "the decoder pool was closed");
    await Promise.all(
      this.slots.splice(0).map((slot) => {
        for (const job of slot.jobs) this.fail(job, "cancelled", "the decoder pool was closed");
        clearTimeout(slot.timer);
        return slot.worker.terminate();
      }),
    );
  }

  private submit(request: WorkerRequest, file: string, opts: JobOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const job: Job = {
        request: { ...request, id: this.nextId++ },
        file,
        timeoutMs: opts.timeoutMs ?? 30_000,
        signal: opts.signal,
        resolve,
        reject,
        settled: false,
      };
      if (this.closed) return this.fail(job, "cancelled", "the decoder pool was closed");
      if (opts.signal?.aborted) return this.fail(job, "cancelled", "cancelled");
      job.onAbort = () => {
        const queued = this.queue.indexOf(job);
        if (queued >= 0) this.queue.splice(queued, 1);
        this.fail(job, "cancelled", "cancelled");
      };
      opts.signal?.addEventListener("abort", job.onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  private fail(job: Job, kind: MediaError["kind"], why: string): void {
    this.settle(job, () => job.reject(new MediaError(`decode of '${job.file}': ${why}`, job.file, kind)));
  }

  private settle(job: Job, how: () => void): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener("abort", job.onAbort);
    how();
  }

  /**
   * Posts every queued job at once, each to the worker with the fewest: a worker then goes from one job to the next
   * on its own. Handing them out one at a time from this thread left the workers idle half the time, because this
   * thread is the trainer's and hands nothing out during a step.
   */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      const job = this.queue.shift() as Job;
      if (job.settled) continue;
      let slot = this.slots.reduce<Slot | undefined>(
        (a, b) => (a && a.jobs.length <= b.jobs.length ? a : b),
        undefined,
      );
      if (!slot || (slot.jobs.length > 0 && this.slots.length < this.size)) slot = this.start();
      slot.jobs.push(job);
      if (slot.jobs.length === 1) this.startTimer(slot);
      slot.worker.postMessage(job.request);
    }
  }

  private startTimer(slot: Slot): void {
    clearTimeout(slot.timer);
    const job = slot.jobs[0];
    slot.timer = job ? setTimeout(() => this.timedOut(slot, job), job.timeoutMs) : undefined;
  }

  private start(): Slot {
    const worker = new Worker(workerUrl);
    const slot: Slot = { worker, jobs: [] };
    worker.on("message", (reply: WorkerReply) => this.answered(slot, reply));
    worker.on("error", (err) => this.lost(slot, `its decoding thread failed: ${err.message}`));
    worker.on("exit", (code) => this.lost(slot, `its decoding thread stopped (exit code ${code})`));
    worker.unref(); // after the listeners, which would take the reference back
    this.slots.push(slot);
    return slot;
  }

  private answered(slot: Slot, reply: WorkerReply): void {
    const job = slot.jobs[0];
    if (!job || job.request.id !== reply.id) return;
    slot.jobs.shift();
    this.startTimer(slot); // the worker goes straight on to the next one
    if (reply.ok) {
      this.settle(job, () => job.resolve(reply.result));
      return;
    }
    const { kind, message } = reply;
    const err = kind === "unsupported" ? new LeftToFfmpeg(message) : new MediaError(message, job.file, kind);
    this.settle(job, () => job.reject(err));
  }

  /**
   * A worker that died: its running job fails, the jobs behind it go back to the queue, and the queue gets a new
   * worker.
   */
  private lost(slot: Slot, why: string): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return;
    this.slots.splice(at, 1);
    clearTimeout(slot.timer);
    const [running, ...waiting] = slot.jobs;
    slot.jobs = [];
    if (running) this.fail(running, "failed", why);
    this.queue.unshift(...waiting);
    this.pump();
  }

  private timedOut(slot: Slot, job: Job): void {
    this.fail(job, "timeout", `timed out after ${job.timeoutMs} ms and its decoding thread was stopped`);
    this.lost(slot, "timed out");
    void slot.worker.terminate();
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
