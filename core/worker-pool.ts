/**
 * One pool of worker threads for the whole library: the in-process libav decoder (media/libav-pool.ts) and the
 * Parquet augmentation threads (pipeline/parquet-examples.ts) are both thin users of it.
 *
 * - Every job is posted at once, to the thread with the fewest jobs (a new thread while the pool is below its size
 *   and the least busy one has work): a thread then goes from one job to the next on its own. Handing jobs out one
 *   at a time from this thread left the threads idle half the time, because this thread is the trainer's and hands
 *   nothing out during a step.
 * - A job may have a time limit: the oldest unanswered job of a thread that passes it fails ("timeout"), and its
 *   thread is stopped and replaced.
 * - A job may be cancelled (AbortSignal): a queued one just leaves the queue; a posted one is answered at once and
 *   its result thrown away when it comes (a job takes milliseconds).
 * - A thread that dies fails its oldest job; the jobs behind it go back to the queue, but for those whose buffers
 *   went to the dead thread (transferred, so gone): they fail too.
 * - A thread keeps the process alive only while it has jobs.
 *
 * A thread's entry module calls `serveJobs` with its handler; the pool and the thread speak `PoolRequest` and
 * `PoolReply`. Why not piscina: it stops a thread to cancel a running job (here a cancelled decode just has its
 * result dropped, cheaper than a new thread and its JIT warm-up), and has no per-job time limit of its own.
 */
import { parentPort, type TransferListItem, Worker } from "node:worker_threads";

/** What the pool posts to a thread. */
export interface PoolRequest<Request> {
  id: number;
  request: Request;
}

/** What a thread answers: its handler's reply, or the message of what it threw. */
export type PoolReply<Reply> =
  | { id: number; ok: true; reply: Reply }
  | { id: number; ok: false; message: string };

/** A job the pool could not get answered: its time limit passed, it was cancelled, or its thread failed. */
export class WorkerPoolError extends Error {
  override name = "WorkerPoolError";
  constructor(
    message: string,
    readonly kind: "timeout" | "cancelled" | "failed",
  ) {
    super(message);
  }
}

export interface WorkerPoolOptions {
  /** The threads' entry module: one that calls `serveJobs`. */
  url: URL;
  /** Threads at most (`grow` raises it). */
  size: number;
  /** Names a thread in errors, e.g. "decoding thread" (default "worker thread"). */
  threadName?: string;
  /** Names the pool in errors, e.g. "decoder pool" (default "worker pool"). */
  poolName?: string;
}

export interface PoolJobOptions {
  /** Fail the job (and stop and replace its thread) when it has been running this long; default: no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Buffers handed to the thread instead of copied (they are unusable here afterwards). */
  transfer?: readonly TransferListItem[];
}

interface Job<Request, Reply> {
  id: number;
  request: Request;
  opts: PoolJobOptions;
  resolve: (reply: Reply) => void;
  reject: (err: WorkerPoolError) => void;
  settled: boolean;
  onAbort?: () => void;
}

interface Slot<Request, Reply> {
  worker: Worker;
  /** Jobs posted to this thread and not yet answered, oldest first. */
  jobs: Job<Request, Reply>[];
  /** The time limit of the oldest job. */
  timer?: NodeJS.Timeout;
}

export class WorkerPool<Request, Reply> {
  private readonly slots: Slot<Request, Reply>[] = [];
  private readonly queue: Job<Request, Reply>[] = [];
  private nextId = 1;
  private closed = false;
  private size: number;
  private readonly threadName: string;
  private readonly poolName: string;

  constructor(private readonly options: WorkerPoolOptions) {
    this.size = options.size;
    this.threadName = options.threadName ?? "worker thread";
    this.poolName = options.poolName ?? "worker pool";
  }

  /** Lets the pool run up to `size` threads (it never shrinks). */
  grow(size: number): void {
    this.size = Math.max(this.size, size);
    this.pump();
  }

  /** Runs one job on a thread; rejects with a WorkerPoolError (or the thread's own message, kind "failed"). */
  run(request: Request, opts: PoolJobOptions = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const job: Job<Request, Reply> = { id: this.nextId++, request, opts, resolve, reject, settled: false };
      if (this.closed) return this.fail(job, "cancelled", `the ${this.poolName} was closed`);
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

  /** Stops every thread; jobs still queued or running fail as cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    const why = `the ${this.poolName} was closed`;
    for (const job of this.queue.splice(0)) this.fail(job, "cancelled", why);
    await Promise.all(
      this.slots.splice(0).map((slot) => {
        for (const job of slot.jobs) this.fail(job, "cancelled", why);
        clearTimeout(slot.timer);
        return slot.worker.terminate();
      }),
    );
  }

  private fail(job: Job<Request, Reply>, kind: WorkerPoolError["kind"], why: string): void {
    this.settle(job, () => job.reject(new WorkerPoolError(why, kind)));
  }

  private settle(job: Job<Request, Reply>, how: () => void): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.opts.signal?.removeEventListener("abort", job.onAbort);
    how();
  }

  /** Posts every queued job at once, each to the thread with the fewest (see the file comment). */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      const job = this.queue.shift() as Job<Request, Reply>;
      if (job.settled) continue;
      let slot = this.slots.reduce<Slot<Request, Reply> | undefined>(
        (a, b) => (a && a.jobs.length <= b.jobs.length ? a : b),
        undefined,
      );
      if (!slot || (slot.jobs.length > 0 && this.slots.length < this.size)) slot = this.start();
      slot.jobs.push(job);
      if (slot.jobs.length === 1) {
        slot.worker.ref(); // busy: the process waits for its answers
        this.startTimer(slot);
      }
      const message: PoolRequest<Request> = { id: job.id, request: job.request };
      slot.worker.postMessage(message, job.opts.transfer);
    }
  }

  private startTimer(slot: Slot<Request, Reply>): void {
    clearTimeout(slot.timer);
    const job = slot.jobs[0];
    const limit = job?.opts.timeoutMs;
    slot.timer = job && limit !== undefined ? setTimeout(() => this.timedOut(slot, job), limit) : undefined;
  }

  private start(): Slot<Request, Reply> {
    const worker = new Worker(this.options.url);
    const slot: Slot<Request, Reply> = { worker, jobs: [] };
    worker.on("message", (reply: PoolReply<Reply>) => this.answered(slot, reply));
    worker.on("error", (err) => this.lost(slot, `its ${this.threadName} failed: ${err.message}`));
    worker.on("exit", (code) => this.lost(slot, `its ${this.threadName} stopped (exit code ${code})`));
    worker.unref(); // after the listeners, which would take the reference back
    this.slots.push(slot);
    return slot;
  }

  private answered(slot: Slot<Request, Reply>, reply: PoolReply<Reply>): void {
    const at = slot.jobs.findIndex((j) => j.id === reply.id);
    if (at < 0) return;
    const [job] = slot.jobs.splice(at, 1);
    if (at === 0) this.startTimer(slot); // the thread goes straight on to the next one
    if (slot.jobs.length === 0) slot.worker.unref();
    if (reply.ok) this.settle(job, () => job.resolve(reply.reply));
    else this.fail(job, "failed", reply.message);
  }

  /** A thread that died: see the file comment. The queue gets a new thread. */
  private lost(slot: Slot<Request, Reply>, why: string): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return;
    this.slots.splice(at, 1);
    clearTimeout(slot.timer);
    const [oldest, ...waiting] = slot.jobs;
    slot.jobs = [];
    if (oldest) this.fail(oldest, "failed", why);
    const again = waiting.filter((job) => (job.opts.transfer?.length ?? 0) === 0);
    for (const job of waiting) if (!again.includes(job)) this.fail(job, "failed", why);
    this.queue.unshift(...again);
    this.pump();
  }

  private timedOut(slot: Slot<Request, Reply>, job: Job<Request, Reply>): void {
    const limit = job.opts.timeoutMs;
    this.fail(job, "timeout", `timed out after ${limit} ms and its ${this.threadName} was stopped`);
    this.lost(slot, "timed out");
    void slot.worker.terminate();
  }
}

/** What a thread's handler gives back: the reply and the buffers to transfer with it. */
export interface JobAnswer<Reply> {
  reply: Reply;
  transfer?: readonly TransferListItem[];
}

/**
 * The thread side: answers each job the pool posts with `handle`'s reply (or the message of what it threw). A
 * synchronous handler runs one job at a time; an asynchronous one may have several in flight.
 */
export function serveJobs<Request, Reply>(
  handle: (request: Request) => JobAnswer<Reply> | Promise<JobAnswer<Reply>>,
): void {
  const port = parentPort;
  if (!port) throw new Error("serveJobs runs in a worker thread only (started by a WorkerPool)");
  const answer = (id: number, got: JobAnswer<Reply>) =>
    port.postMessage({ id, ok: true, reply: got.reply } satisfies PoolReply<Reply>, got.transfer);
  const refuse = (id: number, err: unknown) =>
    port.postMessage({
      id,
      ok: false,
      message: err instanceof Error ? err.message : String(err),
    } satisfies PoolReply<Reply>);
  port.on("message", ({ id, request }: PoolRequest<Request>) => {
    try {
      const got = handle(request);
      if (got instanceof Promise)
        got.then(
          (g) => answer(id, g),
          (err: unknown) => refuse(id, err),
        );
      else answer(id, got);
    } catch (err) {
      refuse(id, err);
    }
  });
}
