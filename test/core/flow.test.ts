import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { from, mergeMap, take } from "rxjs";
import {
  batchOf,
  flow,
  fromIterable,
  mapConcurrent,
  mapEach,
  takeFirst,
  toAsyncIterable,
} from "../../core/flow.js";

/** A lazily generated source of `count` refs that counts how many were read. */
function countingSource(count: number) {
  const state = { read: 0 };
  async function* refs() {
    for (let i = 0; i < count; i++) {
      state.read += 1;
      yield i;
    }
  }
  return { state, refs: refs() };
}

describe("demand-driven flow", () => {
  it("a 200 ms consumer over 100,000 refs: reads and held clips stay within concurrency + buffer, RSS flat", async () => {
    const concurrency = 2;
    const buffer = 3;
    const { state, refs } = countingSource(100_000);
    let started = 0;
    let received = 0; // handed to the consumer (which then holds one during its step)
    let consumed = 0;
    let maxHeld = 0;
    let maxAhead = 0;
    const clipBytes = 4 << 20; // a fake decoded clip of 4 MiB
    const fakeDecode = async (i: number) => {
      started += 1;
      maxHeld = Math.max(maxHeld, started - received);
      await sleep(5);
      const clip = new Uint8Array(clipBytes);
      clip[0] = i & 0xff;
      return clip;
    };
    // Counts a clip as handed over when the stage emits it to the consumer's end.
    const handOver = mapEach((clip: Uint8Array) => {
      received += 1;
      return clip;
    });
    const stream = toAsyncIterable(
      flow(fromIterable(refs), mapConcurrent(fakeDecode, { concurrency, buffer }), handOver),
    );
    let rssAfterWarmup = 0;
    for await (const clip of stream) {
      assert.equal(clip.length, clipBytes);
      maxAhead = Math.max(maxAhead, state.read - received);
      await sleep(200); // the training step
      maxAhead = Math.max(maxAhead, state.read - received);
      consumed += 1;
      if (consumed === 3) rssAfterWarmup = process.memoryUsage().rss;
      if (consumed === 12) break;
    }
    const rssGrowth = process.memoryUsage().rss - rssAfterWarmup;
    assert.ok(maxAhead <= concurrency + buffer, `read ${maxAhead} refs ahead of consumption`);
    assert.ok(maxHeld <= concurrency + buffer, `${maxHeld} clips held at once by the pipeline`);
    assert.ok(state.read <= consumed + concurrency + buffer, `read ${state.read} for ${consumed} consumed`);
    assert.ok(rssGrowth < 64 << 20, `RSS grew by ${rssGrowth >> 20} MiB`);
  });

  it("for contrast: rxjs from() + mergeMap reads the source far ahead of a slow consumer", async () => {
    const { state, refs } = countingSource(100_000);
    await new Promise<void>((resolve) => {
      from(refs)
        .pipe(
          mergeMap((i) => sleep(200).then(() => i), 2),
          take(1),
        )
        .subscribe({ complete: resolve });
    });
    assert.ok(state.read > 1000, `read ${state.read}`);
  });

  it("keeps source order, skips failures through onError and asks for replacements", async () => {
    const skipped: number[] = [];
    const out: number[] = [];
    const project = async (i: number) => {
      await sleep((7 - i) * 3); // later values finish first
      if (i % 3 === 0) throw new Error(`bad ${i}`);
      return i * 10;
    };
    const op = mapConcurrent(project, { concurrency: 4, buffer: 1, onError: (_e, i) => skipped.push(i) });
    for await (const v of toAsyncIterable(flow(fromIterable([0, 1, 2, 3, 4, 5, 6, 7]), op))) out.push(v);
    assert.deepEqual(out, [10, 20, 40, 50, 70]);
    assert.deepEqual(skipped.sort(), [0, 3, 6]);
  });

  it("many projects (and their fan-out) listening to the stage's abort signal raise no listener warning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const listening = { now: 0, most: 0 };
      // Each project fans out to 4 listeners, as an evaluation video decodes its 4 windows at once.
      const project = async (i: number, signal: AbortSignal) => {
        const handlers = [0, 1, 2, 3].map(() => () => {});
        for (const h of handlers) signal.addEventListener("abort", h, { once: true });
        listening.now += 4;
        listening.most = Math.max(listening.most, listening.now);
        await sleep(5);
        for (const h of handlers) signal.removeEventListener("abort", h);
        listening.now -= 4;
        return i;
      };
      const op = mapConcurrent(project, { concurrency: 8, buffer: 1 });
      const out: number[] = [];
      for await (const v of toAsyncIterable(flow(fromIterable([...Array(32).keys()]), op))) out.push(v);
      await sleep(10); // warnings are emitted on the next tick
      assert.equal(out.length, 32);
      assert.ok(listening.most > 10, `only ${listening.most} listeners at once: the case is not exercised`);
      assert.deepEqual(warnings, []);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("an error without onError ends the stream with it", async () => {
    const op = mapConcurrent(
      async (i: number) => {
        if (i === 2) throw new Error("broken clip 2");
        return i;
      },
      { concurrency: 2, buffer: 0 },
    );
    await assert.rejects(async () => {
      for await (const _ of toAsyncIterable(flow(fromIterable([1, 2, 3]), op))) {
        // drain
      }
    }, /broken clip 2/);
  });

  it("breaking out aborts in-flight work and returns the source iterator", async () => {
    const aborted: number[] = [];
    let returned = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        returned = true;
      }
    }
    const slow = (i: number, signal: AbortSignal) =>
      new Promise<number>((resolve) => {
        if (i === 0) return resolve(0);
        signal.addEventListener("abort", () => aborted.push(i));
      });
    for await (const v of toAsyncIterable(
      flow(fromIterable(source()), mapConcurrent(slow, { concurrency: 3, buffer: 1 })),
    )) {
      assert.equal(v, 0);
      break;
    }
    await sleep(10);
    assert.ok(aborted.length >= 2, `aborted ${aborted}`);
    assert.ok(returned);
  });

  it("batchOf, mapEach and takeFirst compose and only pull what they need", async () => {
    const { state, refs } = countingSource(1000);
    const batches: number[][] = [];
    const piped = flow(
      fromIterable(refs),
      mapEach((i: number) => i * 2),
      batchOf(3),
      takeFirst(2),
    );
    for await (const b of toAsyncIterable(piped)) batches.push(b);
    assert.deepEqual(batches, [
      [0, 2, 4],
      [6, 8, 10],
    ]);
    assert.ok(state.read <= 7, `read ${state.read}`);
    const tail: number[][] = [];
    for await (const b of toAsyncIterable(flow(fromIterable([1, 2, 3, 4]), batchOf<number>(3)))) tail.push(b);
    assert.deepEqual(tail, [[1, 2, 3], [4]]);
  });
});
