import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { tableFromArrays, tableFromJSON, tableToIPC } from "apache-arrow";
import { Table, WriterPropertiesBuilder, writeParquet } from "parquet-wasm";
import { SkipLog } from "../../core/skips.js";
import { manifest, manifestRow, parseLabels } from "../../datasets/manifest.js";
import { collect, fixtureDir } from "./fixtures.js";

const MEDIA = { "media/a.mp4": "", "media/b.wav": "" };

test("parseLabels accepts lists, one integer and separated strings", () => {
  assert.deepEqual(parseLabels("3 7"), [3, 7]);
  assert.deepEqual(parseLabels("3;7"), [3, 7]);
  assert.deepEqual(parseLabels("[3,7]"), [3, 7]);
  assert.deepEqual(parseLabels([1, 2]), [1, 2]);
  assert.deepEqual(parseLabels(5), [5]);
  assert.deepEqual(parseLabels(undefined), []);
  assert.deepEqual(parseLabels(""), []);
  assert.ok("error" in (parseLabels("1 x") as object));
  assert.ok("error" in (parseLabels([-1]) as object));
});

test("manifestRow checks the path and the window", () => {
  assert.match((manifestRow({ start: 0, end: 1 }) as { error: string }).error, /path/);
  assert.match((manifestRow({ path: "a", start: 2, end: 1 }) as { error: string }).error, /reversed/);
  assert.match((manifestRow({ path: "a", start: -1, end: 1 }) as { error: string }).error, /negative/);
  assert.match((manifestRow({ path: "a", start: "", end: 1 }) as { error: string }).error, /numbers/);
  assert.match((manifestRow({ path: "a", start: 1, end: 1 }) as { error: string }).error, /empty/);
});

test("CSV manifest: paths relative to the manifest, text as a caption, labels; bad rows skipped", async () => {
  const root = await fixtureDir({
    ...MEDIA,
    "m.csv":
      "path,start,end,text,labels\n" +
      'media/a.mp4,1.5,4.7,"Pour the flour, slowly",2 5\n' + // line 2
      "media/b.wav,0,3.2,,\n" + // line 3
      "media/a.mp4,5,2,reversed,\n" + // line 4
      "media/gone.mp4,0,1,,\n" + // line 5
      "media/a.mp4,0,1\n" + // line 6: too few columns
      "media/a.mp4,0,1,x,one\n", // line 7: bad labels
  });
  const messages: string[] = [];
  const skips = new SkipLog(50, (e) => messages.push(e.message));
  const refs = await collect(manifest({ path: join(root, "m.csv"), skips }).refs(0));
  assert.deepEqual(refs, [
    {
      source: "manifest",
      id: "media/a.mp4",
      path: join(root, "media", "a.mp4"),
      start: 1.5,
      end: 4.7,
      index: 0,
      epoch: 0,
      captions: [{ start: 1.5, end: 4.7, text: "Pour the flour, slowly" }],
      labels: [2, 5],
    },
    {
      source: "manifest",
      id: "media/b.wav",
      path: join(root, "media", "b.wav"),
      start: 0,
      end: 3.2,
      index: 1,
      epoch: 0,
      captions: [],
      labels: [],
    },
  ]);
  const m = join(root, "m.csv");
  assert.deepEqual(messages, [
    `${m} line 4: end 2 is before start 5 (reversed times). Fix or delete the row; it was skipped.`,
    `${m} line 5: no file ${join(root, "media", "gone.mp4")} (paths are relative to the manifest's folder); skipped.`,
    `${m} line 6: expected 5 columns (path,start,end,text,labels), found 3. Fix or delete the row; it was skipped.`,
    `${m} line 7: labels must be integers >= 0, got 'one'. Fix or delete the row; it was skipped.`,
  ]);
});

test("JSONL manifest: an invalid line is skipped with its line number", async () => {
  const root = await fixtureDir({
    ...MEDIA,
    "m.jsonl":
      '{"path": "media/a.mp4", "start": 0, "end": 2, "labels": [1], "id": "clip-a"}\n' +
      "{not json\n\n" +
      '["an", "array"]\n' +
      '{"path": "media/b.wav", "start": 2, "end": 4, "text": "hello"}\n',
  });
  const skips = new SkipLog();
  const refs = await collect(manifest({ path: join(root, "m.jsonl"), skips, source: "mine" }).refs(3));
  assert.deepEqual(
    refs.map((r) => [r.source, r.id, r.start, r.end, r.labels, r.captions.length, r.epoch]),
    [
      ["mine", "clip-a", 0, 2, [1], 0, 3],
      ["mine", "media/b.wav", 2, 4, [], 1, 3],
    ],
  );
  assert.equal(skips.count, 2);
  assert.match(skips.lastEvents()[0].message, /m\.jsonl line 2: not valid JSON/);
  assert.match(skips.lastEvents()[1].message, /m\.jsonl line 4: expected a JSON object per line/);
});

test("Parquet manifest: rows read one row group at a time; bad rows skipped by row number", async () => {
  const table = tableFromArrays({
    path: ["media/a.mp4", "media/b.wav", "media/a.mp4", "media/gone.mp4"],
    start: new Float64Array([0, 1, 3, 0]),
    end: new Float64Array([2, 3, 1, 1]),
    text: ["first", "second", "reversed", "gone"],
  });
  const props = new WriterPropertiesBuilder().setMaxRowGroupSize(2).build();
  const bytes = writeParquet(Table.fromIPCStream(tableToIPC(table, "stream")), props);
  const root = await fixtureDir({ ...MEDIA, "m.parquet": bytes });
  const skips = new SkipLog();
  const refs = await collect(manifest({ path: join(root, "m.parquet"), skips }).refs(0));
  assert.deepEqual(
    refs.map((r) => [r.path, r.start, r.end, r.captions[0]?.text, r.index]),
    [
      [join(root, "media", "a.mp4"), 0, 2, "first", 0],
      [join(root, "media", "b.wav"), 1, 3, "second", 1],
    ],
  );
  assert.deepEqual(skips.byReason(), {
    "manifest:m.parquet:bad-row": 1,
    "manifest:m.parquet:missing-file": 1,
  });
  assert.match(skips.lastEvents()[0].message, /m\.parquet row 3: end 1 is before start 3/);
  assert.match(skips.lastEvents()[1].message, /m\.parquet row 4: no file/);
});

test("Parquet manifest: list-typed labels and dictionary-encoded paths", async () => {
  const table = tableFromJSON([
    { path: "media/a.mp4", start: 0, end: 1, labels: [4, 1] },
    { path: "media/b.wav", start: 1, end: 2, labels: [] },
  ]);
  const root = await fixtureDir({
    ...MEDIA,
    "l.parquet": writeParquet(Table.fromIPCStream(tableToIPC(table, "stream"))),
  });
  const refs = await collect(manifest({ path: join(root, "l.parquet"), skips: new SkipLog() }).refs(0));
  assert.deepEqual(
    refs.map((r) => [r.id, r.labels]),
    [
      ["media/a.mp4", [4, 1]],
      ["media/b.wav", []],
    ],
  );
});

test("an unknown manifest extension is a clear error", () => {
  assert.throws(() => manifest({ path: "x.txt", skips: new SkipLog() }), /unknown manifest format '\.txt'/);
});
