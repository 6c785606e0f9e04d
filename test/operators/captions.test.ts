import assert from "node:assert/strict";
import { test } from "node:test";
import { intervalGap, nearestCaptions } from "../../core/captions.js";
import type { Caption, ClipRef } from "../../core/records.js";
import { captionPositives, captionText } from "../../operators/captions.js";
import { Vocabulary } from "../../operators/tokenize.js";

const VOCAB = new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c", "d", "e", "f", "g"]);

function cap(start: number, end: number, text: string): Caption {
  return { start, end, text };
}

test("intervalGap: zero when overlapping or touching, else the gap", () => {
  assert.equal(intervalGap(0, 2, 1, 3), 0);
  assert.equal(intervalGap(0, 2, 2, 3), 0);
  assert.equal(intervalGap(0, 2, 5, 6), 3);
  assert.equal(intervalGap(5, 6, 0, 2), 3);
});

test("nearestCaptions: K nearest by gap, ties by centre distance then start, deterministic", () => {
  const caps = [
    cap(0, 1, "a"),
    cap(9, 10, "b"),
    cap(4, 6, "c"),
    cap(3, 4, "d"),
    cap(6, 7, "e"),
    cap(20, 21, "f"),
  ];
  // Window [4, 6]: c, d, e overlap or touch (gap 0); c is centred; d and e tie on centre distance -> earlier
  // start. a and b tie on gap (3) and centre distance (4.5) -> earlier start.
  assert.deepEqual(
    nearestCaptions(caps, 4, 6, 5).map((c) => c.text),
    ["c", "d", "e", "a", "b"],
  );
  assert.deepEqual(
    nearestCaptions([...caps].reverse(), 4, 6, 5).map((c) => c.text),
    ["c", "d", "e", "a", "b"],
    "input order does not matter",
  );
});

test("captionPositives: [K*16] ids with a [K] mask; fewer than K captions pad with mask 0", () => {
  const { textIds, textMask } = captionPositives([cap(0, 2, "A b"), cap(10, 12, "c zebra")], 0, 3, VOCAB);
  assert.equal(textIds.length, 5 * 16);
  assert.deepEqual(Array.from(textMask), [1, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(textIds.slice(0, 3)), [4, 5, 0]);
  assert.deepEqual(Array.from(textIds.slice(16, 19)), [6, 3, 0]);
  assert.ok(textIds.slice(32).every((id) => id === 0));
});

test("captionText: caption-less refs (AudioSet) give zeros with mask 0", () => {
  const ref: ClipRef = {
    source: "audioset",
    id: "x_0",
    path: "x",
    start: 0,
    end: 3.2,
    index: 0,
    epoch: 0,
    captions: [],
    labels: [1],
  };
  const { textIds, textMask } = captionText(VOCAB)(ref);
  assert.equal(textIds.length, 80);
  assert.ok(textIds.every((v) => v === 0) && textMask.every((v) => v === 0));
});
