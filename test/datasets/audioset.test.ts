import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { SkipLog } from "../../core/skips.js";
import {
  audioSet,
  multiHot,
  parseSegmentRow,
  readClassLabels,
  readOntology,
  segmentStem,
} from "../../datasets/audioset.js";
import { collect, fixtureDir } from "./fixtures.js";

const CLASS_LABELS =
  'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/03v3yw,"Keys jangling"\n2,/m/0k4j,"Car"\n' +
  '3,/m/0dgbq,"Civil defense siren, air raid"\n';

const SEGMENTS_HEADER =
  "# Segments csv created Sun Mar  5 10:54:31 2017\n" +
  "# num_ytids=4, num_segs=4, num_unique_labels=4, num_positive_labels=5\n" +
  "# YTID, start_seconds, end_seconds, positive_labels\n";

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

test("segmentStem and parseSegmentRow", () => {
  assert.equal(segmentStem("-0RWZT-miFs", 420), "-0RWZT-miFs_420");
  assert.equal(segmentStem("x", 29.999999), "x_30");
  assert.deepEqual(parseSegmentRow(["-0RWZT-miFs", "420.000", "430.000", "/m/03v3yw,/m/0k4j"]), {
    ytid: "-0RWZT-miFs",
    start: 420,
    end: 430,
    mids: ["/m/03v3yw", "/m/0k4j"],
  });
  assert.match((parseSegmentRow(["a", "1", "2"]) as { error: string }).error, /expected 4 columns/);
  assert.match((parseSegmentRow(["a", "1", "2", "/m/x", "/m/y"]) as { error: string }).error, /quoted/);
  assert.match((parseSegmentRow(["a", "30", "20", "/m/x"]) as { error: string }).error, /reversed/);
  assert.match((parseSegmentRow(["a", "-5", "5", "/m/x"]) as { error: string }).error, /negative/);
  assert.match((parseSegmentRow(["a", "x", "5", "/m/x"]) as { error: string }).error, /numbers/);
});

test("multiHot builds a vector from class indices and rejects indices out of range", () => {
  assert.deepEqual(Array.from(multiHot([0, 3, 3], 5)), [1, 0, 0, 1, 0]);
  assert.deepEqual(Array.from(multiHot([], 2)), [0, 0]);
  assert.throws(() => multiHot([5], 5), /outside the 5 classes/);
});

test("class labels with quoted names holding commas; bad rows are skipped", async () => {
  const root = await fixtureDir({ "labels.csv": `${CLASS_LABELS}x,/m/bad,"Bad"\n5,/m/short\n` });
  const skips = new SkipLog();
  const classes = await readClassLabels(join(root, "labels.csv"), skips);
  assert.deepEqual(classes.names, ["Speech", "Keys jangling", "Car", "Civil defense siren, air raid"]);
  assert.equal(classes.indexOf.get("/m/0k4j"), 2);
  assert.equal(skips.count, 2);
  assert.match(
    skips.lastEvents()[0].message,
    new RegExp(`^${esc(join(root, "labels.csv"))} line 6: expected 3`),
  );
});

test("ontology nodes are read; nodes without id or name are skipped", async () => {
  const node = {
    id: "/m/0dgw9r",
    name: "Human sounds",
    description: "Sounds produced by the human body",
    citation_uri: "",
    positive_examples: [],
    child_ids: ["/m/09l8g"],
    restrictions: [],
  };
  const root = await fixtureDir({ "ontology.json": JSON.stringify([node, { name: "no id" }]) });
  const skips = new SkipLog();
  assert.deepEqual(await readOntology(join(root, "ontology.json"), skips), [node]);
  assert.equal(skips.count, 1);
});

test("AudioSet segments: refs with labels and a seeded window; bad rows and missing clips are skipped", async () => {
  const root = await fixtureDir({
    "class_labels_indices.csv": CLASS_LABELS,
    "balanced_train_segments.csv":
      SEGMENTS_HEADER +
      '-0RWZT-miFs, 420.000, 430.000, "/m/0k4j,/m/03v3yw"\n' + // line 4: ok (labels sorted)
      'gone-video1, 30.000, 40.000, "/m/09x0r"\n' + // line 5: no clip file
      "short-row, 1.000, 2.000\n" + // line 6: 3 columns
      'backwards, 40.000, 30.000, "/m/09x0r"\n' + // line 7: reversed times
      'wav_clip_x, 0.000, 10.000, "/m/nope,/m/0dgbq"\n' + // line 8: unknown label dropped, row kept
      "unquoted, 0.000, 10.000, /m/09x0r,/m/0k4j\n", // line 9: 5 columns
    "clips/-0RWZT-miFs_420.mp4": "",
    "clips/wav_clip_x_0.wav": "",
  });
  const messages: string[] = [];
  const skips = new SkipLog(50, (e) => messages.push(e.message));
  const source = audioSet({ root, seed: 9, skips });
  const refs = await collect(source.refs(0));
  assert.deepEqual(
    refs.map((r) => [r.source, r.id, r.path, r.labels, r.index, r.duration, r.captions]),
    [
      ["audioset", "-0RWZT-miFs_420", join(root, "clips", "-0RWZT-miFs_420.mp4"), [1, 2], 0, 10, []],
      ["audioset", "wav_clip_x_0", join(root, "clips", "wav_clip_x_0.wav"), [3], 1, 10, []],
    ],
  );
  for (const r of refs) assert.ok(r.start >= 0 && r.end <= 10 && Math.abs(r.end - r.start - 3.2) < 1e-9);
  assert.deepEqual(await collect(source.refs(0)), refs, "same seed and epoch, same windows");
  assert.notDeepEqual(
    (await collect(source.refs(1))).map((r) => r.start),
    refs.map((r) => r.start),
  );
  const csv = esc(join(root, "balanced_train_segments.csv"));
  // Three passes (epoch 0 twice, epoch 1): every skip is counted once per pass.
  assert.deepEqual(skips.byReason(), {
    "audioset:balanced_train_segments.csv:bad-row": 9,
    "audioset:balanced_train_segments.csv:unknown-label": 3,
    "audioset:clips:missing-file": 3,
  });
  const expect = (pattern: RegExp) =>
    assert.ok(
      messages.some((m) => pattern.test(m)),
      `${pattern}\n${messages.join("\n")}`,
    );
  expect(new RegExp(`^${csv} line 5: no clip gone-video1_30\\.\\{mp4,mkv,webm,m4a,wav,flac\\} in .*skipped`));
  expect(
    new RegExp(`^${csv} line 6: expected 4 columns .* found 3 in 'short-row, 1.000, 2.000'\\. Fix or delete`),
  );
  expect(new RegExp(`^${csv} line 7: end 30 is before start 40`));
  expect(new RegExp(`^${csv} line 8: label /m/nope is not in .*class_labels_indices.csv`));
  expect(new RegExp(`^${csv} line 9: expected 4 columns .*found 5 \\(is the label list quoted\\?\\)`));
});
