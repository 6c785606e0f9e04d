import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { readCsvRecords, splitCsvRecord } from "../../datasets/csv.js";
import { collect, fixtureDir } from "./fixtures.js";

test("splitCsvRecord reads AudioSet rows: comma + space, quoted label list", () => {
  assert.deepEqual(splitCsvRecord('-0RWZT-miFs, 420.000, 430.000, "/m/03v3yw,/m/0k4j"'), {
    fields: ["-0RWZT-miFs", "420.000", "430.000", "/m/03v3yw,/m/0k4j"],
  });
});

test("splitCsvRecord handles doubled quotes, empty fields and errors", () => {
  assert.deepEqual(splitCsvRecord('1,/m/x,"Say ""hi"", world"'), {
    fields: ["1", "/m/x", 'Say "hi", world'],
  });
  assert.deepEqual(splitCsvRecord("a,,b,"), { fields: ["a", "", "b", ""] });
  assert.deepEqual(splitCsvRecord('a,"open'), { open: true });
  assert.ok("error" in splitCsvRecord('a,"x"y'));
  assert.ok("error" in splitCsvRecord('a,b"c'));
});

test("readCsvRecords: line numbers, comments, blank lines, a quoted field over two lines", async () => {
  const root = await fixtureDir({ "a.csv": '# comment\nx,y\n\n"multi\nline",2\nbad"quote,3\n"unclosed,4\n' });
  const recs = await collect(readCsvRecords(join(root, "a.csv"), { multiline: true }));
  assert.deepEqual(recs[0], { line: 2, fields: ["x", "y"], text: "x,y" });
  assert.deepEqual(recs[1], { line: 4, fields: ["multi\nline", "2"], text: '"multi\nline",2' });
  assert.equal(recs[2].line, 6);
  assert.ok("error" in recs[2]);
  assert.equal(recs[3].line, 7);
  assert.ok("error" in recs[3] && /ends inside a quoted field/.test(recs[3].error));
});

test("readCsvRecords without multiline: an unclosed quote costs only its own line", async () => {
  const root = await fixtureDir({ "a.csv": 'a,1\n"open,2\nb,3\n' });
  const recs = await collect(readCsvRecords(join(root, "a.csv")));
  assert.deepEqual(
    recs.map((r) => ("error" in r ? `${r.line}: ${r.error}` : `${r.line}: ${r.fields.join("|")}`)),
    ["1: a|1", "2: a quoted field is never closed", "3: b|3"],
  );
});
