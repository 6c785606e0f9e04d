import assert from "node:assert/strict";
import { test } from "node:test";
import { mixSources, pickWeighted } from "../../operators/mix.js";
import { collect, listSource } from "../datasets/fixtures.js";

test("pickWeighted follows the cumulative weights and skips zero weights", () => {
  assert.equal(pickWeighted([1, 1], 0.49), 0);
  assert.equal(pickWeighted([1, 1], 0.5), 1);
  assert.equal(pickWeighted([0, 2, 0], 0.99), 1);
  assert.equal(pickWeighted([3, 1], 0.74), 0);
  assert.equal(pickWeighted([3, 1], 0.76), 1);
});

test("equal weights mix about evenly; each ref names its source; indices are the mixed positions", async () => {
  const mixed = mixSources(
    [{ source: listSource("howto100m", 5000) }, { source: listSource("audioset", 5000) }],
    {
      seed: 1,
    },
  );
  const refs = (await collect(mixed.refs(0))).slice(0, 2000);
  const howto = refs.filter((r) => r.source === "howto100m").length;
  assert.ok(Math.abs(howto - 1000) < 100, `howto100m share ${howto} / 2000`);
  assert.deepEqual(
    refs.map((r) => r.index),
    refs.map((_, i) => i),
  );
  // Each source's refs come in their own order.
  assert.deepEqual(
    refs.filter((r) => r.source === "audioset").map((r) => r.id),
    Array.from({ length: 2000 - howto }, (_, i) => `audioset-${i}`),
  );
  assert.equal(mixed.name, "howto100m+audioset");
});

test("the mix is a pure function of seed and epoch", async () => {
  const make = (seed: number) =>
    mixSources([{ source: listSource("a", 50) }, { source: listSource("b", 50) }], { seed });
  const ids = async (seed: number, epoch: number) => (await collect(make(seed).refs(epoch))).map((r) => r.id);
  assert.deepEqual(await ids(4, 0), await ids(4, 0));
  assert.notDeepEqual(await ids(4, 0), await ids(4, 1));
  assert.notDeepEqual(await ids(4, 0), await ids(5, 0));
});

test("weights 3:1 give about 75 % of the first source; weight 0 never draws", async () => {
  const refs = await collect(
    mixSources(
      [
        { source: listSource("a", 4000), weight: 3 },
        { source: listSource("b", 4000), weight: 1 },
        { source: listSource("c", 4000), weight: 0 },
      ],
      { seed: 2 },
    ).refs(0),
  );
  const first = refs.slice(0, 2000).filter((r) => r.source === "a").length;
  assert.ok(Math.abs(first - 1500) < 90, `a share ${first} / 2000`);
  assert.ok(!refs.some((r) => r.source === "c"));
});

test("when one source runs out the other continues; untilFirstExhausted ends the epoch instead", async () => {
  const small = listSource("small", 5);
  const big = listSource("big", 100);
  const all = await collect(mixSources([{ source: small }, { source: big }], { seed: 3 }).refs(0));
  assert.equal(all.length, 105);
  assert.equal(all.filter((r) => r.source === "small").length, 5);
  assert.deepEqual(
    all.map((r) => r.index),
    all.map((_, i) => i),
  );
  const early = await collect(
    mixSources([{ source: listSource("small", 5) }, { source: listSource("big", 100) }], {
      seed: 3,
      untilFirstExhausted: true,
    }).refs(0),
  );
  assert.equal(early.filter((r) => r.source === "small").length, 5);
  assert.ok(early.length < 30, `ended after ${early.length} refs`);
});

test("mixing pulls only what is consumed (no read-ahead)", async () => {
  const a = listSource("a", 1000);
  const b = listSource("b", 1000);
  let taken = 0;
  for await (const _ of mixSources([{ source: a }, { source: b }], { seed: 0 }).refs(0)) {
    taken++;
    if (taken === 10) break;
  }
  assert.equal(a.pulled + b.pulled, 10);
});

test("bad weights are refused with a clear message", () => {
  assert.throws(
    () => mixSources([{ source: listSource("a", 1), weight: -1 }], { seed: 0 }),
    /weight of a must be/,
  );
  assert.throws(() => mixSources([], { seed: 0 }), /at least one source/);
});
