import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { CONCEPTS } from "../../datasets/synth-concepts.js";
import { synthesizeDownstream } from "../../datasets/synth-downstream.js";
import { parseYouCook2Entry, youcook2 } from "../../datasets/youcook2.js";
import { probe } from "../../media/probe.js";
import { collect, fixtureDir } from "./fixtures.js";

describe("youcook2", () => {
  it("reads a synthetic set: one ref per annotated segment of the validation videos, with its window", async () => {
    const root = await fixtureDir({});
    const truth = await synthesizeDownstream({
      kind: "youcook2",
      out: root,
      videos: 3,
      seed: 4,
      width: 48,
      height: 32,
      fps: 8,
    });
    const skips = new SkipLog();
    const refs = await collect(youcook2({ root, skips }).refs(0));
    const validation = truth.items.filter((it) => it.file.startsWith("raw_videos/validation/"));
    assert.equal(validation.length, 1);
    const expected = validation.flatMap((it) =>
      it.sentences!.map((s, k) => ({
        id: `${it.id}_${k}`,
        path: join(root, it.file),
        start: s.start,
        end: s.end,
        captions: [{ start: s.start, end: s.end, text: s.text }],
        duration: it.duration,
      })),
    );
    assert.ok(expected.length >= 3);
    assert.deepEqual(
      refs.map((r) => ({
        id: r.id,
        path: r.path,
        start: r.start,
        end: r.end,
        captions: r.captions,
        duration: r.duration,
      })),
      expected,
    );
    assert.deepEqual(
      refs.map((r) => r.index),
      expected.map((_, i) => i),
    );
    const training = await collect(youcook2({ root, skips, subset: "training" }).refs(0));
    assert.equal(
      training.length,
      truth.items
        .filter((it) => it.file.startsWith("raw_videos/training/"))
        .reduce((n, it) => n + it.sentences!.length, 0),
    );
    assert.deepEqual(skips.byReason(), {});
    // Segments lie inside the encoded video, and each sentence names its segment's concepts.
    const info = await probe(refs[0].path);
    assert.ok(Math.abs(info.duration - validation[0].duration!) < 0.2, `${info.duration}`);
    for (const it of truth.items) {
      for (const s of it.sentences!) {
        assert.ok(s.start >= 0 && s.end > s.start && s.end < it.duration!);
        assert.ok(Number.isInteger(s.start) && Number.isInteger(s.end));
        for (const c of s.concepts) assert.ok(CONCEPTS[c].words.some((w) => s.text.split(" ").includes(w)));
      }
    }
  });

  it("skips bad entries and annotations with the line of their video, and videos without a file", async () => {
    const database = {
      good: {
        duration: 20,
        subset: "validation",
        recipe_type: "113",
        annotations: [{ segment: [1, 4], id: 0, sentence: "cut the tomato" }],
      },
      gone: {
        duration: 20,
        subset: "validation",
        recipe_type: "113",
        annotations: [
          { segment: [1, 4], id: 0, sentence: "x" },
          { segment: [5, 6], id: 1, sentence: "y" },
        ],
      },
      mixed: {
        duration: 10,
        subset: "validation",
        recipe_type: 201,
        annotations: [
          { segment: [6, 3], id: 0, sentence: "reversed" },
          { segment: [2, 12], id: 1, sentence: "runs past the end" },
          { segment: [1, 2], id: 2, sentence: "" },
        ],
      },
      broken: { subset: "validation", recipe_type: "113", annotations: [] },
      train: {
        duration: 5,
        subset: "training",
        recipe_type: "113",
        annotations: [{ segment: [0, 1], id: 0, sentence: "z" }],
      },
    };
    const root = await fixtureDir({
      "youcookii_annotations_trainval.json": JSON.stringify({ database }, null, 1),
      "raw_videos/validation/113/good.mkv": "",
      "raw_videos/validation/201/mixed.mp4": "",
      "raw_videos/training/113/train.mp4": "",
    });
    const skips = new SkipLog();
    const refs = await collect(youcook2({ root, skips }).refs(0));
    assert.deepEqual(
      refs.map((r) => [r.id, r.start, r.end, r.path.slice(root.length)]),
      [
        ["good_0", 1, 4, "/raw_videos/validation/113/good.mkv"],
        ["mixed_1", 2, 10, "/raw_videos/validation/201/mixed.mp4"],
      ],
    );
    assert.deepEqual(skips.byReason(), {
      "youcook2:missing-file": 1,
      "youcook2:bad-annotation": 2,
      "youcook2:bad-entry": 1,
    });
    const messages = skips.lastEvents().map((e) => e.message);
    const json = JSON.stringify({ database }, null, 1).split("\n");
    const lineOf = (key: string) => json.findIndex((l) => l.includes(`"${key}":`)) + 1;
    assert.match(
      messages[0],
      new RegExp(
        `line ${lineOf("gone")}: video "gone": no file in .*validation/113 .*its 2 segments were skipped`,
      ),
    );
    assert.match(
      messages[1],
      new RegExp(`line ${lineOf("mixed")}: video "mixed", annotation 0: end 3 is before start 6`),
    );
    assert.match(messages[2], /video "mixed", annotation 2: "sentence" must be a non-empty string/);
    assert.match(
      messages[3],
      new RegExp(`line ${lineOf("broken")}: video "broken": "duration" must be a positive number`),
    );
  });

  it("refuses a file that is not the annotations JSON", async () => {
    const root = await fixtureDir({ "youcookii_annotations_trainval.json": '{"videos": []}' });
    await assert.rejects(collect(youcook2({ root, skips: new SkipLog() }).refs(0)), /expected \{"database"/);
    const bad = await fixtureDir({ "youcookii_annotations_trainval.json": '{"database": {' });
    await assert.rejects(collect(youcook2({ root: bad, skips: new SkipLog() }).refs(0)), /not valid JSON/);
  });

  it("checks an entry's shape", () => {
    assert.deepEqual(parseYouCook2Entry([]), {
      error: "expected an object {duration, subset, recipe_type, annotations}",
    });
    const entry = parseYouCook2Entry({
      duration: 3,
      subset: "validation",
      recipe_type: "1",
      annotations: [{ segment: [0, 1], sentence: "a" }],
    });
    assert.ok(!("error" in entry));
    assert.deepEqual(entry.segments, [{ id: "0", start: 0, end: 1, sentence: "a" }]);
  });
});
