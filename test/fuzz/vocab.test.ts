import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { vocabTarget } from "./targets/vocab.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: vocabulary files", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(vocabTarget);
    assert.ok(corpus >= 3);
    assert.equal(generated, vocabTarget.quickRuns);
  });
});
