/**
 * One pool of workers for the whole library: the libav decoder (media/libav-pool.ts, child processes) and the
 * Parquet augmentation threads (pipeline/parquet-examples.ts) are both thin users of it. Its workers are threads of
 * this process or child processes (`isolation`; core/pool-members.ts says what each costs and guards against).
 *
 * - Every job is posted at once, to the worker with the fewest jobs (a new worker while the pool is below its size
 *   and the least busy one has work): a worker then goes from one job to the next on its own. Handing jobs out one
 *   at a time from this thread left the workers idle half the time, because this thread is the trainer's and hands
 *   nothing out during a step.
 * - A job may have a time limit, counted from when its worker is ready (a child's start is not the job's): the
 *   oldest unanswered job of a worker that passes it fails ("timeout"), and its worker is stopped and replaced. A
 *   child is killed (SIGKILL), so a hang in native code really ends; a thread stuck there cannot be stopped and is
 *   left behind.
 * - A job may be cancelled (AbortSignal): a queued one just leaves the queue; a posted one is answered at once and
 *   its result thrown away when it comes (a job takes milliseconds).
 * - A worker that dies fails its oldest job: "crashed" for a child (naming the signal, e.g. SIGSEGV, or the exit
 *   code), "failed" for a thread. The jobs behind it go back to the queue, but for those whose buffers went to a
 *   dead thread (transferred, so gone): they fail too. A child's buffers were copied, so all of its jobs go back.
 * - A job may ask for a `fresh` worker, one that has run nothing yet (a retry after a crash or a hang): one is
 *   started for it, in place of an idle worker when the pool is full, or above the pool's size until it is idle.
 * - A worker keeps the process alive only while it has jobs.
 *
 * A worker's entry module calls `serveJobs` with its handler; the pool and the worker speak `PoolRequest` and
 * `PoolReply`. Why not piscina: it stops a thread to cancel a running job (here a cancelled decode just has its
 * result dropped, cheaper than a new thread and its JIT warm-up), has no per-job time limit of its own, and no
 * processes.
 */
import { rm } from "node:fs/promises";
import type { TransferListItem } from "node:worker_threads";
import { removeReplyFolder, replyFile, replyFolder } from "./pool-files.js";
import {
  type Isolation,
  type MemberDeath,
  type PoolMember,
  type PoolReady,
  type PoolReply,
  type PoolRequest,
  startMember,
} from "./pool-members.js";

export {
  type Isolation,
  inPoolWorker,
  type JobAnswer,
  type PoolReply,
  type PoolRequest,
  serveJobs,
} from "./pool-members.js";

/** A job the pool could not get answered: its time limit passed, it was cancelled, or its worker failed or died. */
export class WorkerPoolError extends Error {
  override name = "WorkerPoolError";
  constructor(
    message: string,
    readonly kind: "timeout" | "cancelled" | "failed" | "crashed",
    /** For "crashed": how the child died, e.g. "SIGSEGV" or "exit code 3". */
    readonly death?: string,
  ) {
    super(message);
  }
}

export interface WorkerPoolOptions {
  /** The workers' entry module: one that calls `serveJobs`. */
  url: URL;
  /** Workers at most (`grow` raises it). */
  size: number;
  /** Threads of this process (default) or child processes. */
  isolation?: Isolation;
  /** Names a worker in errors, e.g. "decoding process" (default "worker thread" / "worker process"). */
  workerName?: string;
  /** Names the pool in errors, e.g. "decoder pool" (default "worker pool"). */
  poolName?: string;
}

export interface PoolJobOptions {
  /** Fail the job (and stop and replace its worker) when it has been running this long; default: no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Buffers handed to a thread instead of copied (they are unusable here afterwards); a child gets copies. */
  transfer?: readonly TransferListItem[];
  /** Run on a worker that has run no job before (see the file comment). */
  fresh?: boolean;
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
  member: PoolMember;
  /** Jobs posted to this worker and not yet answered, oldest first. */
  jobs: Job<Request, Reply>[];
  /** Whether its handler is in place; until then its jobs wait here, unsent and untimed. */
  ready: boolean;
  /** Jobs it was ever given. */
  served: number;
  /** The time limit of the oldest job. */
  timer?: NodeJS.Timeout;
}

export class WorkerPool<Request, Reply> {
  private readonly slots: Slot<Request, Reply>[] = [];
  private readonly queue: Job<Request, Reply>[] = [];
  /** Workers being stopped (timed out, retired): `close` waits for them too. */
  private readonly ending = new Set<Promise<void>>();
  private nextId = 1;
  private closed = false;
  /** Where children write their large replies (core/pool-files.ts); made with the first child. */
  private folder?: string;
  private size: number;
  private readonly isolation: Isolation;
  private readonly workerName: string;
  private readonly poolName: string;

  constructor(private readonly options: WorkerPoolOptions) {
    this.size = options.size;
    this.isolation = options.isolation ?? "thread";
    this.workerName = options.workerName ?? `worker ${this.isolation}`;
    this.poolName = options.poolName ?? "worker pool";
  }

  /** Lets the pool run up to `size` workers (it never shrinks). */
  grow(size: number): void {
    this.size = Math.max(this.size, size);
    this.pump();
  }

  /** Runs one job on a worker; rejects with a WorkerPoolError (or the worker's own message, kind "failed"). */
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

  /** Stops every worker and waits until each is gone; jobs still queued or running fail as cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    const why = `the ${this.poolName} was closed`;
    for (const job of this.queue.splice(0)) this.fail(job, "cancelled", why);
    for (const slot of this.slots.splice(0)) {
      for (const job of slot.jobs) this.fail(job, "cancelled", why);
      this.stop(slot);
    }
    await Promise.all(this.ending);
    if (this.folder) await removeReplyFolder(this.folder);
  }

  private fail(job: Job<Request, Reply>, kind: WorkerPoolError["kind"], why: string, death?: string): void {
    this.settle(job, () => job.reject(new WorkerPoolError(why, kind, death)));
  }

  private settle(job: Job<Request, Reply>, how: () => void): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.opts.signal?.removeEventListener("abort", job.onAbort);
    how();
  }

  /** Posts every queued job at once, each to the worker with the fewest (see the file comment). */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      const job = this.queue.shift() as Job<Request, Reply>;
      if (job.settled) continue;
      const slot = job.opts.fresh ? this.freshSlot() : this.leastBusy();
      slot.jobs.push(job);
      slot.served += 1;
      if (slot.jobs.length === 1) {
        slot.member.hold(true); // busy: the process waits for its answers
        this.startTimer(slot);
      }
      if (slot.ready) this.post(slot, job);
    }
  }

  private leastBusy(): Slot<Request, Reply> {
    const slot = this.slots.reduce<Slot<Request, Reply> | undefined>(
      (a, b) => (a && a.jobs.length <= b.jobs.length ? a : b),
      undefined,
    );
    return !slot || (slot.jobs.length > 0 && this.slots.length < this.size) ? this.start() : slot;
  }

  private freshSlot(): Slot<Request, Reply> {
    const unused = this.slots.find((s) => s.served === 0);
    if (unused) return unused;
    const idle = this.slots.find((s) => s.jobs.length === 0);
    if (idle && this.slots.length >= this.size) this.retire(idle);
    return this.start();
  }

  private post(slot: Slot<Request, Reply>, job: Job<Request, Reply>): void {
    const message: PoolRequest<Request> = { id: job.id, request: job.request };
    slot.member.post(message, job.opts.transfer);
  }

  private startTimer(slot: Slot<Request, Reply>): void {
    clearTimeout(slot.timer);
    const job = slot.jobs[0];
    const limit = job?.opts.timeoutMs;
    slot.timer =
      slot.ready && job && limit !== undefined
        ? setTimeout(() => this.timedOut(slot, job), limit)
        : undefined;
  }

  private start(): Slot<Request, Reply> {
    const slot = { jobs: [], ready: false, served: 0 } as unknown as Slot<Request, Reply>;
    slot.member = startMember(
      this.options.url,
      this.isolation,
      {
        message: (data) => this.received(slot, data as PoolReply<Reply> | PoolReady),
        died: (death) => this.lost(slot, death),
      },
      () => {
        this.folder ??= replyFolder();
        return this.folder;
      },
    );
    this.slots.push(slot);
    return slot;
  }

  private received(slot: Slot<Request, Reply>, data: PoolReply<Reply> | PoolReady): void {
    if ("ready" in data) {
      slot.ready = true;
      for (const job of slot.jobs) this.post(slot, job);
      this.startTimer(slot);
      return;
    }
    const at = slot.jobs.findIndex((j) => j.id === data.id);
    if (at < 0) return;
    const [job] = slot.jobs.splice(at, 1);
    if (at === 0) this.startTimer(slot); // the worker goes straight on to the next one
    if (slot.jobs.length === 0) {
      slot.member.hold(false);
      // Above the pool's size for a fresh job: no longer needed once idle.
      if (this.slots.length > this.size && this.slots.includes(slot)) this.retire(slot);
    }
    if (data.ok) this.settle(job, () => job.resolve(data.reply));
    else this.fail(job, "failed", data.message);
  }

  /** A worker that died: see the file comment. The queue gets a new worker. */
  private lost(slot: Slot<Request, Reply>, death: MemberDeath): void {
    if (!this.drop(slot)) return;
    const [oldest, ...waiting] = slot.jobs;
    slot.jobs = [];
    const why =
      death.kind === "crashed"
        ? `the ${this.workerName} crashed (${death.how})`
        : `its ${this.workerName} ${death.how}`;
    if (oldest) {
      this.fail(oldest, death.kind, why, death.how);
      void this.dropReplyFile(oldest);
    }
    this.requeue(waiting, why);
  }

  /** The jobs behind a worker that is gone go back to the queue; those whose buffers went to a thread fail. */
  private requeue(waiting: Job<Request, Reply>[], why: string): void {
    const copied = this.isolation === "process";
    const again = waiting.filter((job) => copied || (job.opts.transfer?.length ?? 0) === 0);
    for (const job of waiting) if (!again.includes(job)) this.fail(job, "failed", why);
    this.queue.unshift(...again);
    this.pump();
  }

  private timedOut(slot: Slot<Request, Reply>, job: Job<Request, Reply>): void {
    const limit = job.opts.timeoutMs;
    const how = this.isolation === "process" ? "killed" : "stopped";
    this.fail(job, "timeout", `timed out after ${limit} ms and its ${this.workerName} was ${how}`);
    if (!this.drop(slot)) return;
    const waiting = slot.jobs.slice(1);
    slot.jobs = [];
    // A thread stuck in native code never ends: `close` cannot wait for it.
    this.stop(slot, this.isolation === "process", job);
    this.requeue(waiting, "timed out");
  }

  /** The reply file a child that died or was killed may have left half written. */
  private async dropReplyFile(job: Job<Request, Reply>): Promise<void> {
    if (this.folder) await rm(replyFile(this.folder, job.id), { force: true });
  }

  /** An idle worker the pool no longer needs. */
  private retire(slot: Slot<Request, Reply>): void {
    if (this.drop(slot)) this.stop(slot);
  }

  /** Takes a worker out of the pool; false when it was out already. */
  private drop(slot: Slot<Request, Reply>): boolean {
    const at = this.slots.indexOf(slot);
    if (at < 0) return false;
    this.slots.splice(at, 1);
    clearTimeout(slot.timer);
    return true;
  }

  /** Stops a worker; then removes what `unfinished`, its job, may have left of a reply file. */
  private stop(slot: Slot<Request, Reply>, awaited = true, unfinished?: Job<Request, Reply>): void {
    clearTimeout(slot.timer);
    const ended = slot.member
      .stop()
      .then(() => unfinished && this.dropReplyFile(unfinished))
      .catch(() => {});
    if (!awaited) return;
    this.ending.add(ended);
    void ended.then(() => this.ending.delete(ended));
  }
}
