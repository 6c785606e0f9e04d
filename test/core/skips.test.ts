import assert from "node:assert/strict";
import { test } from "node:test";
import { describeSkipTallies, itemUnit, SkipLog } from "../../core/skips.js";

test("one bad line met in every pass is one item seen in N passes, with the N skips still counted", () => {
  const skips = new SkipLog();
  for (let pass = 0; pass < 16; pass++) {
    skips.record("howto100m:HowTo100M_v1.csv", "bad-row", "csv line 5: unbalanced quote", {
      item: "data/HowTo100M_v1.csv line 5",
      pass,
    });
  }
  assert.deepEqual(skips.byReason(), { "howto100m:HowTo100M_v1.csv:bad-row": 16 }, "the raw count stays");
  assert.deepEqual(skips.tallies(), {
    "howto100m:HowTo100M_v1.csv:bad-row": { count: 16, items: 1, passes: { min: 16, max: 16 }, unit: "line" },
  });
  assert.deepEqual(describeSkipTallies(skips.tallies()), [
    "howto100m:HowTo100M_v1.csv bad-row: 1 line, seen in 16 passes (16 skips)",
  ]);
});

test("items are told apart, each with its own passes; a repeat within a pass is not a new pass", () => {
  const skips = new SkipLog();
  for (let pass = 0; pass < 3; pass++) {
    // A file with two windows in a pass fails twice in it.
    skips.record("decode", "invalid", "a.mp4 is broken", { item: "/d/a.mp4", pass });
    skips.record("decode", "invalid", "a.mp4 is broken", { item: "/d/a.mp4", pass });
  }
  skips.record("decode", "invalid", "b.mp4 is broken", { item: "/d/b.mp4", pass: 2 });
  skips.record("decode", "timeout", "c.mp4 is slow", { item: "/d/c.mp4", pass: 0 });
  const t = skips.tallies();
  assert.deepEqual(t["decode:invalid"], { count: 7, items: 2, passes: { min: 1, max: 3 }, unit: "file" });
  assert.deepEqual(t["decode:timeout"], { count: 1, items: 1, passes: { min: 1, max: 1 }, unit: "file" });
  assert.deepEqual(skips.itemsOf("decode:invalid"), [
    { item: "/d/a.mp4", passes: 3 },
    { item: "/d/b.mp4", passes: 1 },
  ]);
  assert.deepEqual(describeSkipTallies(t), [
    "decode invalid: 2 files, seen in 1 to 3 passes (7 skips)",
    "decode timeout: 1 file",
  ]);
});

test("without an item the message names it; without a pass it is one read", () => {
  const skips = new SkipLog();
  skips.record("vocab:caption.json", "bad-json", "caption.json line 3: cut short");
  skips.record("vocab:caption.json", "bad-json", "caption.json line 3: cut short");
  skips.record("vocab:caption.json", "bad-json", "caption.json line 9: cut short");
  assert.deepEqual(skips.tallies()["vocab:caption.json:bad-json"], {
    count: 3,
    items: 2,
    passes: { min: 1, max: 1 },
    unit: "item",
  });
  assert.equal(skips.lastEvents()[0].item, "caption.json line 3: cut short");
});

test("past maxItems, skips are counted but no longer told apart", () => {
  const skips = new SkipLog(0, undefined, 2);
  for (let i = 0; i < 5; i++) skips.record("m", "bad-row", `row ${i}`, { item: `m.csv line ${i}`, pass: 0 });
  const t = skips.tallies()["m:bad-row"];
  assert.equal(t.count, 5);
  assert.equal(t.items, 2);
  assert.equal(t.untracked, 3);
  assert.match(describeSkipTallies(skips.tallies())[0], /2 lines \(5 skips; 3 more not told apart\)/);
});

test("itemUnit names what an item id looks like; a recorder can say it", () => {
  assert.equal(itemUnit("a/b.csv line 12"), "line");
  assert.equal(itemUnit("shard.parquet row 7"), "row");
  assert.equal(itemUnit("/videos/x.mp4"), "file");
  assert.equal(itemUnit("class cat"), "item");
  const skips = new SkipLog();
  skips.record("ucf101", "empty-class", "class 'cat' has no videos", { item: "cat", unit: "class" });
  skips.record("ucf101", "empty-class", "class 'dog' has no videos", { item: "dog", unit: "class" });
  assert.deepEqual(describeSkipTallies(skips.tallies()), ["ucf101 empty-class: 2 classes"]);
});
