/** Test helper: the worker entry (thread or child process) of test/core/worker-pool.test.ts's pools. */
import { threadId } from "node:worker_threads";
import { inPoolWorker, serveJobs } from "../../core/worker-pool.js";

export type PoolTestRequest =
  | { op: "block"; ms: number }
  | { op: "wait"; ms: number }
  | { op: "throw"; message: string }
  | { op: "exit"; code: number }
  | { op: "signal"; signal: NodeJS.Signals }
  | { op: "sum"; data: Float64Array };

/** Which worker answered (its process and thread), and what it made. */
export interface PoolTestReply {
  worker: string;
  value: number;
}

if (inPoolWorker()) {
  const worker = `${process.pid}:${threadId}`;
  serveJobs<PoolTestRequest, PoolTestReply>((request) => {
    switch (request.op) {
      case "block": // a worker stuck in native code, as a hung decode is (a negative ms: for good)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, request.ms < 0 ? undefined : request.ms);
        return { reply: { worker, value: request.ms } };
      case "wait":
        return new Promise((resolve) =>
          setTimeout(() => resolve({ reply: { worker, value: request.ms } }), request.ms),
        );
      case "throw":
        throw new Error(request.message);
      case "exit":
        process.exit(request.code);
        break;
      case "signal": // a crash in native code, as a segfault in libav is
        process.kill(process.pid, request.signal);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);
        break;
      case "sum":
        return { reply: { worker, value: request.data.reduce((a, b) => a + b, 0) } };
    }
    throw new Error("unknown op");
  });
}
