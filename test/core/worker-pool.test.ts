import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Isolation, WorkerPool, WorkerPoolError } from "../../core/worker-pool.js";
import { childProcesses } from "../processes.js";
import type { PoolTestReply, PoolTestRequest } from "./pool-worker.js";

const url = new URL("./pool-worker.js", import.meta.url);
const pools: WorkerPool<PoolTestRequest, PoolTestReply>[] = [];
function pool(size: number, isolation: Isolation = "thread") {
  const workerName = `test ${isolation}`;
  const p = new WorkerPool<PoolTestRequest, PoolTestReply>({ url, size, isolation, workerName });
  pools.push(p);
  return p;
}
after(() => Promise.all(pools.map((p) => p.close())));

const isKind = (kind: WorkerPoolError["kind"], pattern?: RegExp) => (err: unknown) =>
  err instanceof WorkerPoolError && err.kind === kind && (!pattern || pattern.test(err.message));

const openFds = () => readdirSync("/proc/self/fd").length;

/** A node child of this test process: our pools' children are the only ones these tests start. */
const nodeChildren = () => childProcesses().filter((c) => /node/.test(c.command));

for (const isolation of ["thread", "process"] as const) {
  describe(`WorkerPool (${isolation} workers)`, () => {
    it("answers jobs and spreads them over its workers, least busy first", async () => {
      const p = pool(2, isolation);
      const replies = await Promise.all(Array.from({ length: 4 }, () => p.run({ op: "block", ms: 50 })));
      const perWorker = new Map<string, number>();
      for (const r of replies) perWorker.set(r.worker, (perWorker.get(r.worker) ?? 0) + 1);
      assert.deepEqual([...perWorker.values()], [2, 2]);
      const data = Float64Array.from([1, 2, 3.5]);
      assert.equal((await p.run({ op: "sum", data }, { transfer: [data.buffer] })).value, 6.5);
      // A thread gets the buffer itself; a child, a copy (the typed array travels as one).
      assert.equal(data.length, isolation === "thread" ? 0 : 3);
    });

    it("rejects with the worker's own message when its handler throws", async () => {
      await assert.rejects(
        pool(1, isolation).run({ op: "throw", message: "bad frame 7" }),
        isKind("failed", /^bad frame 7$/),
      );
    });

    it("stops a job past its time limit, replaces its worker, and runs the jobs queued behind it", async () => {
      const p = pool(1, isolation);
      const started = Date.now();
      const stuck = p.run({ op: "block", ms: 20_000 }, { timeoutMs: 200 });
      const behind = p.run({ op: "block", ms: 10 });
      const how = isolation === "thread" ? "stopped" : "killed";
      await assert.rejects(
        stuck,
        isKind("timeout", new RegExp(`timed out after 200 ms and its test ${isolation} was ${how}`)),
      );
      const next = await behind;
      assert.equal(next.value, 10);
      assert.ok(Date.now() - started < 10_000, "the stuck worker was not waited for");
    });

    it("cancels a queued job before it runs and a running one at once", async () => {
      const p = pool(1, isolation);
      await p.run({ op: "wait", ms: 1 }); // started: the timing below is the job's, not a child's start
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
      assert.equal((await p.run({ op: "wait", ms: 1 })).value, 1, "the worker goes on");
      const before = new AbortController();
      before.abort();
      await assert.rejects(p.run({ op: "wait", ms: 1 }, { signal: before.signal }), isKind("cancelled"));
    });

    it("fails what is left when closed", async () => {
      const p = pool(1, isolation);
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

    it("keeps the process alive while a job runs, and not once its workers are idle", () => {
      const dir = mkdtempSync(join(tmpdir(), "vatt-pool-"));
      const script = join(dir, "run.mjs");
      writeFileSync(
        script,
        `const { WorkerPool } = await import(${JSON.stringify(new URL("../../core/worker-pool.js", import.meta.url).href)});
        const pool = new WorkerPool({ url: new URL(${JSON.stringify(url.href)}), size: 2, isolation: "${isolation}" });
        const reply = await pool.run({ op: "wait", ms: 300 });
        const more = await Promise.all([1, 2, 3].map((ms) => pool.run({ op: "wait", ms })));
        console.log("answered " + reply.value + " " + more.map((r) => r.value).join(","));`,
      );
      try {
        // Exits by itself: with the pool's workers still there but idle.
        const run = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 20_000 });
        assert.equal(run.status, 0, run.stderr);
        assert.equal(run.stdout.trim(), "answered 300 1,2,3");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe("WorkerPool (thread workers)", () => {
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
});

describe("WorkerPool (process workers)", () => {
  it("a child that crashes fails its job as crashed, naming the signal; the jobs behind it still run", async () => {
    const p = pool(1, "process");
    const first = await p.run({ op: "wait", ms: 1 });
    const crashing = p.run({ op: "signal", signal: "SIGSEGV" });
    const data = Float64Array.from([2, 5]);
    const behind = [p.run({ op: "sum", data }, { transfer: [data.buffer] }), p.run({ op: "wait", ms: 2 })];
    await assert.rejects(crashing, (err: unknown) => {
      assert.ok(isKind("crashed", /^the test process crashed \(SIGSEGV\)$/)(err), String(err));
      assert.equal((err as WorkerPoolError).death, "SIGSEGV");
      return true;
    });
    const [sum, wait] = await Promise.all(behind);
    assert.deepEqual(
      [sum.value, wait.value],
      [7, 2],
      "queued behind the crash, copied: re-posted and answered",
    );
    assert.notEqual(sum.worker, first.worker, "on a new child");
    const aborting = p.run({ op: "signal", signal: "SIGABRT" });
    await assert.rejects(aborting, isKind("crashed", /crashed \(SIGABRT\)/));
    await assert.rejects(p.run({ op: "exit", code: 3 }), isKind("crashed", /crashed \(exit code 3\)/));
    assert.equal((await p.run({ op: "wait", ms: 1 })).value, 1, "and the pool goes on");
  });

  it("kills a child stuck in native code at the job's limit: the process is gone, not left behind", async () => {
    const p = pool(1, "process");
    const before = await p.run({ op: "wait", ms: 1 });
    const pid = Number(before.worker.split(":")[0]);
    await assert.rejects(
      p.run({ op: "block", ms: -1 }, { timeoutMs: 300 }),
      isKind("timeout", /after 300 ms and its test process was killed/),
    );
    const after = await p.run({ op: "wait", ms: 1 });
    assert.notEqual(after.worker, before.worker);
    const deadline = Date.now() + 3000;
    while (childProcesses().some((c) => c.pid === pid) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    assert.ok(!childProcesses().some((c) => c.pid === pid), "the hung child was killed and reaped");
  });

  it("runs a fresh job on a child that has run nothing, even when the pool is full", async () => {
    const p = pool(2, "process");
    const used = new Set(
      (await Promise.all([1, 2].map(() => p.run({ op: "block", ms: 30 })))).map((r) => r.worker),
    );
    assert.equal(used.size, 2);
    const fresh = await p.run({ op: "wait", ms: 1 }, { fresh: true });
    assert.ok(!used.has(fresh.worker), `${fresh.worker} ran nothing before`);
    const busy = [p.run({ op: "wait", ms: 200 }), p.run({ op: "wait", ms: 200 })];
    const another = await p.run({ op: "wait", ms: 1 }, { fresh: true });
    assert.ok(
      !used.has(another.worker) && another.worker !== fresh.worker,
      "a new one above the size while all work",
    );
    await Promise.all(busy);
  });

  it("a process that exits without closing its pool leaves no child running, even one stuck in native code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vatt-pool-"));
    const script = join(dir, "run.mjs");
    writeFileSync(
      script,
      `const { WorkerPool } = await import(${JSON.stringify(new URL("../../core/worker-pool.js", import.meta.url).href)});
      const pool = new WorkerPool({ url: new URL(${JSON.stringify(url.href)}), size: 2, isolation: "process" });
      const pids = (await Promise.all([1, 2].map(() => pool.run({ op: "block", ms: 30 })))).map((r) => r.worker.split(":")[0]);
      console.log(pids.join(" "));
      pool.run({ op: "block", ms: -1 }).catch(() => {});
      pool.run({ op: "block", ms: -1 }).catch(() => {});
      setTimeout(() => process.exit(130), 300); // as a second Ctrl-C does`,
    );
    try {
      const run = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 20_000 });
      assert.equal(run.status, 130, run.stderr);
      const pids = run.stdout.trim().split(" ").map(Number);
      assert.equal(pids.length, 2);
      const alive = (pid: number) => existsSync(`/proc/${pid}`);
      const deadline = Date.now() + 3000;
      while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      assert.deepEqual(pids.filter(alive), [], "its children were killed with it");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves no child process after close, whatever the children were doing", async () => {
    // A first pool opens what node keeps for good once it has had a child (/dev/null for its stdin, ...).
    const warm = new WorkerPool<PoolTestRequest, PoolTestReply>({ url, size: 1, isolation: "process" });
    await warm.run({ op: "wait", ms: 1 });
    await warm.close();
    const fdsBefore = openFds();
    const p = new WorkerPool<PoolTestRequest, PoolTestReply>({ url, size: 3, isolation: "process" });
    const before = new Set(nodeChildren().map((c) => c.pid));
    let ours: ReturnType<typeof nodeChildren>;
    const jobs = [
      p.run({ op: "wait", ms: 1 }),
      p.run({ op: "block", ms: -1 }),
      p.run({ op: "block", ms: -1 }, { timeoutMs: 200 }),
      p.run({ op: "signal", signal: "SIGSEGV" }),
      p.run({ op: "wait", ms: 10_000 }),
    ].map((job) => job.catch((err: unknown) => err));
    try {
      await jobs[0];
      ours = nodeChildren().filter((c) => !before.has(c.pid));
      assert.equal(ours.length, 3, "the pool's children run");
      await new Promise((r) => setTimeout(r, 400)); // the limit passed, the crash happened
    } finally {
      await p.close(); // a child blocked for good would keep this test running otherwise
    }
    const outcomes = await Promise.all(jobs);
    assert.ok(
      outcomes.slice(1).every((e) => e instanceof WorkerPoolError),
      "every unfinished job failed",
    );
    const left = childProcesses().filter((c) => ours.some((o) => o.pid === c.pid));
    assert.deepEqual(left, [], "no child, not even a zombie, once close() resolved");
    await new Promise((r) => setTimeout(r, 50)); // the channels' handles close on the next turns
    assert.equal(openFds(), fdsBefore, "no descriptor left open");
  });
});
