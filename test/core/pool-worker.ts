/** Test helper: the thread entry of test/core/worker-pool.test.ts's pools. */
import { isMainThread, threadId } from "node:worker_threads";
import { serveJobs } from "../../core/worker-pool.js";

export type PoolTestRequest =
  | { op: "block"; ms: number }
  | { op: "wait"; ms: number }
  | { op: "throw"; message: string }
  | { op: "exit"; code: number }
  | { op: "sum"; data: Float64Array };

/** Which thread answered, and what it made. */
export interface PoolTestReply {
  threadId: number;
  value: number;
}

if (!isMainThread) {
  serveJobs<PoolTestRequest, PoolTestReply>((request) => {
    switch (request.op) {
      case "block": // a thread stuck in synchronous work, as a hung decode is
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, request.ms);
        return { reply: { threadId, value: request.ms } };
      case "wait":
        return new Promise((resolve) =>
          setTimeout(() => resolve({ reply: { threadId, value: request.ms } }), request.ms),
        );
      case "throw":
        throw new Error(request.message);
      case "exit":
        process.exit(request.code);
        break;
      case "sum":
        return { reply: { threadId, value: request.data.reduce((a, b) => a + b, 0) } };
    }
    throw new Error("unknown op");
  });
}
