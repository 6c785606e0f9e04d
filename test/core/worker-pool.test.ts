import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { WorkerPool, WorkerPoolError } from "../../core/worker-pool.js";
import type { PoolTestReply, PoolTestRequest } from "./pool-worker.js";

const url = new URL("./pool-worker.js", import.meta.url);
const pools: WorkerPool<PoolTestRequest, PoolTestReply>[] = [];
function pool(size: number) {
  const p = new WorkerPool<PoolTestRequest, PoolTestReply>({ url, size, threadName: "test thread" });
  pools.push(p);
  return p;
}
after(() => Promise.all(pools.map((p) => p.close())));

const isKind = (kind: WorkerPoolError["kind"], pattern?: RegExp) => (err: unknown) =>
  err instanceof WorkerPoolError && err.kind === kind && (!pattern || pattern.test(err.message));

describe("WorkerPool", () => {
  it("answers jobs and spreads them over its threads, least busy first", async () => {
    const p = pool(2);
    const replies = await Promise.all(Array.from({ length: 4 }, () => p.run({ op: "block", ms: 50 })));
    const perThread = new Map<number, number>();
    for (const r of replies) perThread.set(r.threadId, (perThread.get(r.threadId) ?? 0) + 1);
    assert.deepEqual([...perThread.values()], [2, 2]);
    const data = Float64Array.from([1, 2, 3.5]);
    assert.equal((await p.run({ op: "sum", data }, { transfer: [data.buffer] })).value, 6.5);
    assert.equal(data.length, 0, "a transferred buffer is the thread's");
  });

  it("rejects with the thread's own message when its handler throws", async () => {
    await assert.rejects(
      pool(1).run({ op: "throw", message: "bad frame 7" }),
      isKind("failed", /^bad frame 7$/),
    );
  });

  it("stops a job past its time limit, replaces its thread, and runs the jobs queued behind it", async () => {
    const p = pool(1);
    const started = Date.now();
    const stuck = p.run({ op: "block", ms: 20_000 }, { timeoutMs: 200 });
    const behind = p.run({ op: "block", ms: 10 });
    await assert.rejects(stuck, isKind("timeout", /timed out after 200 ms and its test thread was stopped/));
    const next = await behind;
    assert.equal(next.value, 10);
    assert.ok(Date.now() - started < 10_000, "the stuck thread was not waited for");
  });

  it("cancels a queued job before it runs and a running one at once", async () => {
    const p = pool(1);
    const running = new AbortController();
    const queued = new AbortController();
    const first = p.run({ op: "wait", ms: 300 }, { signal: running.signal });
    const second = p.run({ op: "throw", message: "ran though cancelled" }, { signal: queued.signal });
    queued.abort();
    await assert.rejects(second, isKind("cancelled"));
    const at = Date.now();
    running.abort();
    await assert.rejects(first, isKind("cancelled"));
    assert.ok(Date.now() - at < 200, "answered before the job's own end");
    assert.equal((await p.run({ op: "wait", ms: 1 })).value, 1, "the thread goes on");
    const before = new AbortController();
    before.abort();
    await assert.rejects(p.run({ op: "wait", ms: 1 }, { signal: before.signal }), isKind("cancelled"));
  });

  it("fails the job of a thread that died, requeues the plain jobs behind it, fails the transferred ones", async () => {
    const p = pool(1);
    const dying = p.run({ op: "exit", code: 3 });
    const plain = p.run({ op: "wait", ms: 1 });
    const data = new Float64Array(4);
    const transferred = p.run({ op: "sum", data }, { transfer: [data.buffer] });
    await Promise.all([
      assert.rejects(dying, isKind("failed", /its test thread stopped \(exit code 3\)/)),
      assert.rejects(transferred, isKind("failed", /its test thread stopped/)),
      plain.then((r) => assert.equal(r.value, 1)),
    ]);
  });

  it("fails what is left when closed", async () => {
    const p = pool(1);
    const running = p.run({ op: "wait", ms: 5_000 });
    const queued = p.run({ op: "wait", ms: 5_000 });
    const both = Promise.all([
      assert.rejects(running, isKind("cancelled", /was closed/)),
      assert.rejects(queued, isKind("cancelled", /was closed/)),
    ]);
    await p.close();
    await both;
    await assert.rejects(p.run({ op: "wait", ms: 1 }), isKind("cancelled", /was closed/));
  });

  it("keeps the process alive while a job runs, and not once its threads are idle", () => {
    const dir = mkdtempSync(join(tmpdir(), "vatt-pool-"));
    const script = join(dir, "run.mjs");
    writeFileSync(
      script,
      `const { WorkerPool } = await import(${JSON.stringify(new URL("../../core/worker-pool.js", import.meta.url).href)});
      const pool = new WorkerPool({ url: new URL(${JSON.stringify(url.href)}), size: 2 });
      const reply = await pool.run({ op: "wait", ms: 300 });
      console.log("answered " + reply.value);`,
    );
    try {
      // Exits by itself: with the pool's thread still there but idle.
      const run = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 20_000 });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout.trim(), "answered 300");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
