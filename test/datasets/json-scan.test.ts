import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { randomForRun } from "../../core/random.js";
import { type JsonScanEvent, scanJsonObject, TopLevelObjectScanner } from "../../datasets/json-scan.js";
import { collect, fixtureDir } from "./fixtures.js";

/** Feeds `text` to a scanner in chunks cut at the given byte positions. */
function scanInChunks(text: string, cuts: number[], maxValueBytes?: number): JsonScanEvent[] {
  const bytes = Buffer.from(text);
  const scanner = new TopLevelObjectScanner(maxValueBytes);
  const events: JsonScanEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...scanner.push(bytes.subarray(from, cut)));
    from = cut;
  }
  return [...events, ...scanner.end()];
}

const SAMPLE = {
  'vid"1': { start: [0, 1.5], end: [2, 3], text: ["héllo {world}", 'quote \\" and \\\\ slash ]'] },
  v2: { start: [], end: [], text: [] },
  日本: { start: [1], end: [2], text: ["日本語のテキスト 🎉"] },
  n: 42,
  s: "plain string, with } and ,",
  t: true,
  arr: [[1, [2]], { a: "}" }],
};

test("every chunking of the file yields the same entries as JSON.parse", () => {
  const text = JSON.stringify(SAMPLE, null, 1);
  const expected = Object.entries(SAMPLE);
  const rng = randomForRun(7, "test");
  const length = Buffer.byteLength(text);
  const chunkings = [[], Array.from({ length: length - 1 }, (_, i) => i + 1)];
  for (let k = 0; k < 40; k++) {
    const cuts = Array.from({ length: 1 + rng.int(8) }, () => 1 + rng.int(length - 1)).sort((a, b) => a - b);
    chunkings.push(cuts);
  }
  for (const cuts of chunkings) {
    const events = scanInChunks(text, cuts);
    assert.deepEqual(
      events.map((e) => (e.kind === "entry" ? [e.key, e.value] : e)),
      expected,
      `cuts ${cuts.join(",")}`,
    );
  }
});

test("entries report the line their key starts on", () => {
  const events = scanInChunks('{\n"a": {"x": [1,\n2]},\n\n"b": 1\n}', [5]);
  assert.deepEqual(
    events.map((e) => [e.kind === "entry" ? e.key : "", e.line]),
    [
      ["a", 2],
      ["b", 5],
    ],
  );
});

test("a broken value is reported with its key and line; the next entries still flow", () => {
  const events = scanInChunks('{"a": {"start": [1,,2]},\n"b": {"ok": 1}}', []);
  assert.equal(events.length, 2);
  assert.equal(events[0].kind, "error");
  assert.equal(events[0].line, 1);
  assert.match((events[0] as { message: string }).message, /value of "a" is not valid JSON/);
  assert.deepEqual(events[1], { kind: "entry", key: "b", value: { ok: 1 }, line: 2 });
});

test("damage between entries is reported once and the scanner resynchronises", () => {
  const events = scanInChunks('{"a": 1,\n garbage {"x": ","}, "b": 2}', []);
  assert.deepEqual(
    events.map((e) => e.kind),
    ["entry", "error", "entry"],
  );
  assert.match((events[1] as { message: string }).message, /expected a quoted key, found 'g'/);
  assert.equal(events[1].line, 2);
  assert.deepEqual(events[2], { kind: "entry", key: "b", value: 2, line: 2 });
});

test("a truncated file, an empty file and a non-object are reported", () => {
  const truncated = scanInChunks('{"a": 1, "b": {"start": [1', []);
  assert.equal(truncated.at(-1)?.kind, "error");
  assert.match((truncated.at(-1) as { message: string }).message, /truncated/);
  assert.match((scanInChunks("", [])[0] as { message: string }).message, /empty/);
  assert.match((scanInChunks("[1, 2]", [])[0] as { message: string }).message, /one JSON object/);
});

test("junk after the closing brace is reported once", () => {
  const events = scanInChunks('{"a": 1}\n xx yy', [11, 13]);
  assert.deepEqual(
    events.map((e) => [e.kind, e.line]),
    [
      ["entry", 1],
      ["error", 2],
    ],
  );
});

test("a value over the size limit is skipped, not buffered", () => {
  const big = `{"a": [${"1,".repeat(100)}1], "b": 3}`;
  const events = scanInChunks(big, [10, 20, 30, 40, 50, 60], 50);
  assert.equal(events[0].kind, "error");
  assert.match((events[0] as { message: string }).message, /larger than 50 bytes/);
  assert.deepEqual(events[1], { kind: "entry", key: "b", value: 3, line: 1 });
});

test("scanJsonObject streams a file with a small chunk size", async () => {
  const root = await fixtureDir({ "c.json": `\ufeff${JSON.stringify(SAMPLE)}` });
  const events = await collect(scanJsonObject(join(root, "c.json"), { chunkBytes: 7 }));
  assert.deepEqual(
    events.map((e) => (e.kind === "entry" ? [e.key, e.value] : e)),
    Object.entries(SAMPLE),
  );
});
