/**
 * The workers of core/worker-pool.ts behind one face: a worker thread of this process, or a child process (forked,
 * with V8's serialization on the IPC channel so typed arrays travel as such). And the worker side, `serveJobs`,
 * which works in both.
 *
 * Why processes: a segfault or abort in native code (FFmpeg's libraries on a damaged file) kills the whole process
 * it runs in. In a thread that is the training run; in a child it is one job, and the pool starts another child. A
 * thread stuck in native code cannot be stopped (`terminate` waits for JavaScript to run); a child gets SIGKILL.
 * What it costs: a reply is copied through a pipe instead of handed over, and a child is a second V8 (~40 MB).
 *
 * A child:
 * - starts with node's default flags (not this process's: `node -e`, `--test` or `--inspect` would make it run the
 *   wrong thing or fight for a port), with this process's environment;
 * - writes its stdout to our stderr, so a `--json` command's stdout stays one JSON object;
 * - ignores SIGINT and SIGTERM: a Ctrl-C reaches the whole process group, and the run, not the terminal, decides
 *   when its workers end (a clip in flight would otherwise fail as "crashed");
 * - exits when its channel closes, so it does not outlive this process even when this one is killed, and is killed
 *   when this process exits (a child stuck in native code does not see its channel close; only when this process
 *   is killed with SIGKILL can such a child outlive it);
 * - is always waited for (`stop` resolves once it is reaped): none is left a zombie.
 */
import { type ChildProcess, fork } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, type TransferListItem, Worker } from "node:worker_threads";
import { packReply, replyFile, unpackReply } from "./pool-files.js";

/** Where a pool's workers run: threads of this process, or child processes. */
export type Isolation = "thread" | "process";

/** What the pool posts to a worker. */
export interface PoolRequest<Request> {
  id: number;
  request: Request;
}

/**
 * What a worker answers: its handler's reply, or the message of what it threw. A child's reply whose large buffers
 * went through a file (core/pool-files.ts) names it; the pool sees the reply once they are back in place.
 */
export type PoolReply<Reply> =
  | { id: number; ok: true; reply: Reply; file?: string }
  | { id: number; ok: false; message: string };

/** A worker's first message: its handler is in place (a child's module has loaded), so jobs can be timed. */
export interface PoolReady {
  ready: true;
}

/** How a worker ended by itself. */
export interface MemberDeath {
  /** "crashed": a child that died (signal or exit); "failed": a thread that threw or stopped. */
  kind: "crashed" | "failed";
  /** E.g. "SIGSEGV", "exit code 3", or a thread's error message. */
  how: string;
}

/** One worker of a pool, thread or process. */
export interface PoolMember {
  post(message: PoolRequest<unknown>, transfer?: readonly TransferListItem[]): void;
  /** Busy (it has jobs): keeps this process alive for its answers; idle: does not. */
  hold(busy: boolean): void;
  /** Ends it now (a thread is terminated, a child gets SIGKILL); resolves once it is gone. */
  stop(): Promise<void>;
}

export interface MemberEvents {
  message(data: unknown): void;
  /** It ended without being asked to; called once at most. */
  died(death: MemberDeath): void;
}

/** The argument a pool's child is started with, by which `inPoolWorker` knows it is one. */
const CHILD_MARK = "--vatt-pool-worker";

/** Whether this code runs as a pool's worker (a thread, or a child started by a pool): entry modules check it. */
export function inPoolWorker(): boolean {
  return !isMainThread || (process.argv.includes(CHILD_MARK) && typeof process.send === "function");
}

/** Starts a worker; a child writes its large reply buffers into `folder` (core/pool-files.ts). */
export function startMember(
  url: URL,
  isolation: Isolation,
  events: MemberEvents,
  folder: () => string,
): PoolMember {
  return isolation === "process" ? startChild(url, events, folder()) : startThread(url, events);
}

function startThread(url: URL, events: MemberEvents): PoolMember {
  const worker = new Worker(url);
  let dead = false;
  const died = (death: MemberDeath) => {
    if (dead) return;
    dead = true;
    events.died(death);
  };
  worker.on("message", (data) => events.message(data));
  worker.on("error", (err) => died({ kind: "failed", how: `failed: ${err.message}` }));
  worker.on("exit", (code) => died({ kind: "failed", how: `stopped (exit code ${code})` }));
  worker.unref(); // after the listeners, which would take the reference back
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    hold: (busy) => (busy ? worker.ref() : worker.unref()),
    stop: async () => {
      dead = true;
      await worker.terminate();
    },
  };
}

function startChild(url: URL, events: MemberEvents, folder: string): PoolMember {
  const child: ChildProcess = fork(fileURLToPath(url), [CHILD_MARK, folder], {
    serialization: "advanced",
    execArgv: [],
    stdio: ["ignore", 2, "inherit", "ipc"],
  });
  let dead = false;
  // Replies whose buffers are still being read back: a death is told after them, as the channel tells it.
  let unpacking = Promise.resolve();
  const died = (death: MemberDeath) =>
    void unpacking.then(() => {
      if (dead) return;
      dead = true;
      events.died(death);
    });
  // This process may end without closing its pool (process.exit on a second Ctrl-C): a child blocked in native code
  // would not see its channel close, and would run on; so it is killed then too.
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  // Reaped by libuv before "exit" is emitted.
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  }).then(() => {
    process.off("exit", killOnExit);
  });
  child.on("message", (data: PoolReply<unknown> | PoolReady) => {
    if (!("file" in data && data.file)) return events.message(data);
    const file = data.file;
    const read = unpackReply(data.reply, file).then(
      (reply) => events.message({ ...data, reply, file: undefined }),
      (err: Error) =>
        events.message({ id: data.id, ok: false, message: `its reply was lost: ${err.message}` }),
    );
    unpacking = unpacking.then(() => read);
  });
  // "close", not "exit": it comes after the replies still in the channel, so a job the child answered just before
  // it died is not counted as the one that killed it.
  child.once("close", (code, signal) => died({ kind: "crashed", how: signal ?? `exit code ${code}` }));
  child.on("error", (err) => {
    // Could not start it, signal it or write to it: it is of no more use either way.
    child.kill("SIGKILL");
    died({ kind: "crashed", how: err.message });
  });
  const hold = (busy: boolean) => {
    if (busy) {
      child.ref();
      child.channel?.ref();
    } else {
      child.unref();
      child.channel?.unref();
    }
  };
  hold(false);
  return {
    // A failed write means the child is gone: its "close" tells the pool.
    post: (message) => child.send(message, undefined, undefined, () => {}),
    hold,
    stop: async () => {
      dead = true;
      if (child.exitCode === null && child.signalCode === null) {
        hold(true); // or this process may end before it, its promise unsettled
        child.kill("SIGKILL");
      }
      await exited;
    },
  };
}

/** What a worker's handler gives back: the reply and the buffers to transfer with it (a thread's; a child copies). */
export interface JobAnswer<Reply> {
  reply: Reply;
  transfer?: readonly TransferListItem[];
}

/**
 * The worker side, in a thread or a child alike: answers each job the pool posts with `handle`'s reply (or the
 * message of what it threw). In a thread, a synchronous handler runs one job at a time and an asynchronous one may
 * have several in flight. A child runs one job at a time, and its reply's large buffers go through a file
 * (core/pool-files.ts): through the channel, an 11 MB reply left a few hundred KB per turn of the child's event
 * loop, so it was held up by the next decode (~1 s from the end of a decode to its arrival, against ~6 ms for a
 * thread).
 */
export function serveJobs<Request, Reply>(
  handle: (request: Request) => JobAnswer<Reply> | Promise<JobAnswer<Reply>>,
): void {
  const run = async ({ id, request }: PoolRequest<Request>) => {
    try {
      const got = await handle(request);
      return { message: { id, ok: true, reply: got.reply } as PoolReply<Reply>, transfer: got.transfer };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { message: { id, ok: false, message } as PoolReply<Reply> };
    }
  };
  const port = parentPort;
  if (port && !isMainThread) {
    port.on("message", (job: PoolRequest<Request>) =>
      run(job).then(({ message, transfer }) => port.postMessage(message, transfer)),
    );
    port.postMessage({ ready: true } satisfies PoolReady);
    return;
  }
  const send = process.send?.bind(process);
  if (!inPoolWorker() || !send) {
    throw new Error(
      "serveJobs runs in a pool's worker only (a thread or child process started by a WorkerPool)",
    );
  }
  const folder = process.argv[process.argv.indexOf(CHILD_MARK) + 1];
  const queue: PoolRequest<Request>[] = [];
  let busy = false;
  const next = (): void => {
    if (busy || queue.length === 0) return;
    const job = queue.shift() as PoolRequest<Request>;
    busy = true;
    void run(job).then(({ message, transfer }) => {
      let reply = message;
      if (message.ok) {
        const file = replyFile(folder, job.id);
        try {
          const packed = packReply(message.reply, transfer, file);
          if (packed.written) reply = { ...message, reply: packed.reply as Reply, file };
        } catch (err) {
          reply = {
            id: job.id,
            ok: false,
            message: `its reply could not be written: ${(err as Error).message}`,
          };
        }
      }
      // A failed write means the pool is gone: "disconnect" below ends this process.
      send(reply, undefined, undefined, () => {});
      busy = false;
      next();
    });
  };
  process.on("message", (job: PoolRequest<Request>) => {
    queue.push(job);
    next();
  });
  process.on("disconnect", () => {
    // The pool's process is gone, maybe killed before it could remove its reply folder.
    rmSync(folder, { recursive: true, force: true });
    process.exit(0);
  });
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => {});
  send({ ready: true } satisfies PoolReady);
}
