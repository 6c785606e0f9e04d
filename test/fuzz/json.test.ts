import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TopLevelObjectScanner } from "../../datasets/json-scan.js";
import { jsonTarget } from "./targets/json.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: caption.json / ontology.json", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(jsonTarget);
    assert.ok(corpus >= 1, "the corpus folder test/fuzz/corpus/json holds files");
    assert.equal(generated, jsonTarget.quickRuns);
  });

  it("refuses a value longer than the limit without holding it", () => {
    const scanner = new TopLevelObjectScanner(1024);
    const events = [...scanner.push(Buffer.from('{"a": "')), ...scanner.push(Buffer.alloc(1 << 20, 0x61))];
    assert.deepEqual(events, []);
    const end = [...scanner.push(Buffer.from('"}')), ...scanner.end()];
    assert.equal(end.length, 1);
    assert.match(end[0].kind === "error" ? end[0].message : "", /larger than 1024 bytes/);
  });
});
