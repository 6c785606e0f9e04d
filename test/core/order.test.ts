import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type OrderOptions,
  orderedRefs,
  positionAfter,
  type StreamPosition,
  shardOf,
  shuffleBuffered,
  stableHash,
} from "../../core/order.js";
import { randomForRun } from "../../core/random.js";
import type { ClipRef, ClipSource } from "../../core/records.js";
import { mixSources } from "../../operators/mix.js";
import { collect, listSource } from "../datasets/fixtures.js";

const key = (r: ClipRef) => `${r.epoch}:${r.id}`;

test("stableHash is FNV-1a (stable across runs and machines)", () => {
  assert.equal(stableHash(""), 0x811c9dc5);
  assert.equal(stableHash("a"), 0xe40c292c);
});

for (const shardBy of ["index", "id"] as const) {
  test(`shards by ${shardBy} are disjoint and together hold every ref`, async () => {
    const source = listSource("s", 100);
    const parts = await Promise.all(
      [0, 1, 2].map(async (index) =>
        (await collect(orderedRefs(source, { seed: 1, shard: { index, count: 3 }, shardBy }))).map(
          (r) => r.id,
        ),
      ),
    );
    const all = parts.flat();
    assert.equal(new Set(all).size, all.length, "disjoint");
    assert.equal(all.length, 100, "complete");
    for (const p of parts) assert.ok(p.length > 15, `balanced enough: ${parts.map((q) => q.length)}`);
  });
}

test("shardOf by id keeps every clip of one video on one shard", () => {
  const ref = (index: number): ClipRef => ({
    source: "h",
    id: "vid",
    path: "",
    start: 0,
    end: 1,
    index,
    epoch: 0,
    captions: [],
    labels: [],
  });
  assert.equal(new Set([0, 1, 2, 3].map((i) => shardOf(ref(i), 4, "id"))).size, 1);
});

test("the buffered shuffle is a seeded permutation that reads at most one buffer ahead", async () => {
  const source = listSource("s", 200);
  const order = async (seed: number) => {
    const out: string[] = [];
    for await (const r of shuffleBuffered(source.refs(0), 16, randomForRun(seed, "t"))) {
      out.push(r.id);
      assert.ok(source.pulled - out.length <= 16, "bounded read-ahead");
    }
    source.pulled = 0;
    return out;
  };
  const a = await order(1);
  assert.deepEqual([...a].sort(), Array.from({ length: 200 }, (_, i) => `s-${i}`).sort());
  assert.notDeepEqual(
    a,
    Array.from({ length: 200 }, (_, i) => `s-${i}`),
  );
  assert.deepEqual(await order(1), a);
  assert.notDeepEqual(await order(2), a);
});

test("epochs follow each other, each shuffled differently, with order 0..n-1", async () => {
  const refs = await collect(orderedRefs(listSource("s", 30), { seed: 5, epochs: 2, shuffleBuffer: 8 }));
  assert.equal(refs.length, 60);
  assert.deepEqual(
    refs.map((r) => r.epoch),
    [...new Array(30).fill(0), ...new Array(30).fill(1)],
  );
  assert.deepEqual(
    refs.map((r) => r.order),
    [...Array(30).keys(), ...Array(30).keys()],
  );
  assert.notDeepEqual(
    refs.slice(0, 30).map((r) => r.id),
    refs.slice(30).map((r) => r.id),
  );
});

async function checkResume(source: ClipSource, opts: OrderOptions): Promise<void> {
  const full = (await collect(orderedRefs(source, opts))).map(key);
  assert.ok(full.length > 0);
  for (const cut of [1, 2, 7, Math.floor(full.length / 2), full.length - 1, full.length]) {
    let last: ClipRef | undefined;
    let taken = 0;
    for await (const r of orderedRefs(source, opts)) {
      last = r;
      if (++taken === cut) break;
    }
    // Saved as plain JSON and handed back.
    const saved: StreamPosition = JSON.parse(JSON.stringify(positionAfter(last!)));
    const rest = (await collect(orderedRefs(source, { ...opts, resume: saved }))).map(key);
    assert.deepEqual(
      rest,
      full.slice(cut),
      `resume after ${cut} of ${full.length} (${JSON.stringify(saved)})`,
    );
  }
}

test("resuming from a saved position yields exactly the remaining refs (shuffled, sharded, 3 epochs)", async () => {
  await checkResume(listSource("s", 40), {
    seed: 11,
    epochs: 3,
    shuffleBuffer: 7,
    shard: { index: 1, count: 2 },
  });
});

test("resuming a mixed HowTo100M + AudioSet stream is exact too", async () => {
  const mixed = mixSources(
    [{ source: listSource("howto100m", 25) }, { source: listSource("audioset", 40) }],
    {
      seed: 2,
    },
  );
  await checkResume(mixed, { seed: 2, epochs: 2, shuffleBuffer: 5 });
});

test("a resume position at {epoch, 0} is the start of that epoch", async () => {
  const source = listSource("s", 10);
  const all = await collect(orderedRefs(source, { seed: 1, epochs: 2, shuffleBuffer: 4 }));
  const rest = await collect(
    orderedRefs(source, { seed: 1, epochs: 2, shuffleBuffer: 4, resume: { epoch: 1, next: 0 } }),
  );
  assert.deepEqual(rest.map(key), all.slice(10).map(key));
});

test("an empty source ends the stream even with endless epochs; bad options are refused", async () => {
  assert.deepEqual(await collect(orderedRefs(listSource("e", 0), { seed: 0, epochs: Infinity })), []);
  await assert.rejects(
    collect(orderedRefs(listSource("s", 1), { seed: 0, shard: { index: 2, count: 2 } })),
    /shard/,
  );
  await assert.rejects(
    collect(orderedRefs(listSource("s", 1), { seed: 0, resume: { epoch: -1, next: 0 } })),
    /resume position/,
  );
  assert.throws(
    () =>
      positionAfter({
        source: "s",
        id: "x",
        path: "",
        start: 0,
        end: 1,
        index: 0,
        epoch: 0,
        captions: [],
        labels: [],
      }),
    /did not come from orderedRefs/,
  );
});
