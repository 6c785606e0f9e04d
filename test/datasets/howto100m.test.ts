import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { howTo100M, parseCaptionEntry, placeWindow } from "../../datasets/howto100m.js";
import { collect, fixtureDir } from "./fixtures.js";

const CSV_HEADER = "video_id,category_1,category_2,rank,task_id\n";

/** caption.json text, one entry per line so line numbers are easy to state. */
function captionJson(entries: [string, string][]): string {
  return `{\n${entries.map(([id, body]) => `"${id}": ${body}`).join(",\n")}\n}\n`;
}

function captions(n: number, step = 4, length = 3): string {
  const start = Array.from({ length: n }, (_, i) => i * step + 1);
  return JSON.stringify({
    start,
    end: start.map((s) => s + length),
    text: start.map((s) => `words at ${s}`),
  });
}

test("placeWindow centres the window and clamps it to [0, duration]", () => {
  assert.deepEqual(placeWindow(10, 4), { start: 8, end: 12 });
  assert.deepEqual(placeWindow(0.5, 4), { start: 0, end: 4 });
  assert.deepEqual(placeWindow(19.5, 4, 20), { start: 16, end: 20 });
  assert.deepEqual(placeWindow(1, 4, 2), { start: 0, end: 2 });
});

test("parseCaptionEntry rejects unequal arrays and drops single bad captions", () => {
  const unequal = parseCaptionEntry({ start: [1, 2], end: [3], text: ["a", "b"] });
  assert.ok("error" in unequal && /unequal lengths \(start 2, end 1, text 2\)/.test(unequal.error));
  assert.ok("error" in parseCaptionEntry([1, 2]));
  assert.ok("error" in parseCaptionEntry({ start: [1], text: ["a"] }));
  const mixed = parseCaptionEntry({ start: [-1, 5, 1, 2], end: [2, 4, 3, 3], text: ["neg", "rev", "ok", 7] });
  assert.ok("captions" in mixed);
  assert.deepEqual(mixed.captions, [{ start: 1, end: 3, text: "ok" }]);
  assert.deepEqual(
    mixed.problems.map((p) => [p.index, p.message]),
    [
      [0, "start -1 is negative"],
      [1, "end 4 is before start 5 (reversed times)"],
      [2, "text must be a string, got number"],
    ].map(([i, m]) => [i === 2 ? 3 : i, m]),
  );
});

test("well-formed HowTo100M: one ref per video, window centred on a caption, 5 nearest captions", async () => {
  const root = await fixtureDir({
    "HowTo100M_v1.csv": `${CSV_HEADER}vidA,Food,Baking,1,100\nvidB,Cars,Tyres,2,200\n`,
    "caption.json": captionJson([
      ["vidA", captions(12)],
      ["vidB", captions(2)],
    ]),
    "videos/vidA.mp4": "",
    "videos/vidB.webm": "",
  });
  const skips = new SkipLog();
  const source = howTo100M({ root, seed: 1, skips });
  const refs = await collect(source.refs(0));
  assert.equal(skips.count, 0, JSON.stringify(skips.lastEvents()));
  assert.deepEqual(
    refs.map((r) => [r.source, r.id, r.path, r.index, r.epoch]),
    [
      ["howto100m", "vidA", join(root, "videos", "vidA.mp4"), 0, 0],
      ["howto100m", "vidB", join(root, "videos", "vidB.webm"), 1, 0],
    ],
  );
  for (const r of refs) {
    assert.ok(Math.abs(r.end - r.start - 3.2) < 1e-9);
    assert.ok(r.start >= 0);
    const centre = (r.start + r.end) / 2;
    assert.ok(r.start === 0 || r.captions.some((c) => Math.abs((c.start + c.end) / 2 - centre) < 1e-9));
    assert.deepEqual(r.labels, []);
  }
  assert.equal(refs[0].captions.length, 5);
  assert.equal(refs[1].captions.length, 2);
  // Deterministic for a seed and epoch.
  assert.deepEqual(await collect(source.refs(0)), refs);
});

test("clips per video, random times and known durations", async () => {
  const root = await fixtureDir({
    "caption.json": captionJson([["v", captions(30)]]),
    "videos/v.mkv": "",
  });
  const skips = new SkipLog();
  const source = howTo100M({
    root,
    csv: false,
    seed: 3,
    skips,
    clipsPerVideo: 4,
    randomTimeProbability: 0.5,
    frames: 16,
    fps: 10,
    durationOf: async () => 100,
  });
  const refs = await collect(source.refs(2));
  assert.deepEqual(
    refs.map((r) => r.index),
    [0, 1, 2, 3],
  );
  for (const r of refs) {
    assert.ok(Math.abs(r.end - r.start - 1.6) < 1e-9 && r.start >= 0 && r.end <= 100);
    assert.equal(r.duration, 100);
    assert.equal(r.epoch, 2);
  }
  assert.notDeepEqual(
    refs.map((r) => r.start),
    (await collect(source.refs(3))).map((r) => r.start),
  );
});

test("malformed HowTo100M inputs are reported with file and line, counted, skipped; the rest flows", async () => {
  const root = await fixtureDir({
    "HowTo100M_v1.csv":
      `${CSV_HEADER}good,Food,Baking,1,1\nunequal,a,b,1,1\nnegative,a,b,1,1\n` +
      `"broken quote,a,b,1,1\nmissing,a,b,1,1\nbadjson,a,b,1,1\nnocaptions,a,b,1,1\n,a,b,1,1\n`,
    "caption.json": captionJson([
      ["stranger", captions(2)], // line 2: not in the CSV
      ["unequal", '{"start": [1, 2], "end": [3], "text": ["a", "b"]}'], // line 3
      ["negative", '{"start": [-1, 9, 2], "end": [2, 4, 5], "text": ["neg", "rev", "fine"]}'], // line 4
      ["missing", captions(2)], // line 5: no video file
      ["badjson", '{"start": [1,, 2]}'], // line 6
      ["good", captions(3)], // line 7
    ]),
    "videos/good.mp4": "",
    "videos/negative.mov": "",
    "videos/unequal.mp4": "",
    "videos/stranger.mp4": "",
  });
  const messages: string[] = [];
  const skips = new SkipLog(50, (e) => messages.push(e.message));
  const refs = await collect(howTo100M({ root, seed: 0, skips }).refs(0));
  assert.deepEqual(
    refs.map((r) => r.id),
    ["negative", "good"],
  );
  assert.deepEqual(refs[0].captions, [{ start: 2, end: 5, text: "fine" }]);
  const csv = join(root, "HowTo100M_v1.csv");
  const json = join(root, "caption.json");
  assert.deepEqual(skips.byReason(), {
    "howto100m:HowTo100M_v1.csv:bad-row": 2,
    "howto100m:caption.json:bad-caption": 2,
    "howto100m:caption.json:bad-captions": 1,
    "howto100m:caption.json:bad-json": 1,
    "howto100m:caption.json:no-captions": 1,
    "howto100m:caption.json:unknown-video": 1,
    "howto100m:videos:missing-file": 1,
  });
  const expect = (pattern: RegExp) =>
    assert.ok(
      messages.some((m) => pattern.test(m)),
      `no message matches ${pattern}:\n${messages.join("\n")}`,
    );
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  expect(new RegExp(`^${esc(csv)} line 5: .*quote.*skipped`));
  expect(new RegExp(`^${esc(csv)} line 9: no video_id .*Fix or delete the line`));
  expect(new RegExp(`^${esc(json)} line 2: video id "stranger" is not listed in .*Add it to the CSV`));
  expect(new RegExp(`^${esc(json)} line 3: video "unequal": .*unequal lengths \\(start 2, end 1, text 2\\)`));
  expect(new RegExp(`^${esc(json)} line 4: video "negative", caption 0: start -1 is negative`));
  expect(new RegExp(`^${esc(json)} line 4: video "negative", caption 1: end 4 is before start 9`));
  expect(new RegExp(`video "missing" \\(${esc(json)} line 5\\) has no file in .*Download it`));
  expect(new RegExp(`^${esc(json)} line 6: the value of "badjson" is not valid JSON`));
  expect(/video "nocaptions" is listed in .* but has no entry in/);
});
