import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { readClassLabels } from "../../datasets/audioset.js";
import { esc50, ucf101 } from "../../datasets/classification.js";
import { fixtureDir } from "../datasets/fixtures.js";
import { csvTarget } from "./targets/csv.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: CSV and split-file layouts", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(csvTarget);
    assert.ok(corpus >= 8);
    assert.equal(generated, csvTarget.quickRuns);
  });

  it("a class index in the billions is a bad row, not a class list of that size", async () => {
    const root = await fixtureDir({
      "c.csv": "index,mid,display_name\n0,/m/a,A\n4000000000,/m/b,B\n1e21,/m/c,C\n",
    });
    const skips = new SkipLog();
    const classes = await readClassLabels(join(root, "c.csv"), skips);
    assert.deepEqual(classes.mids, ["/m/a"]);
    assert.deepEqual(skips.byReason(), { "audioset:c.csv:bad-row": 2 });
  });

  it("ESC-50 refuses a target in the billions; UCF-101 names a class index with a gap", async () => {
    const root = await fixtureDir({
      "meta/esc50.csv": "filename,fold,target,category\na.wav,1,1000000000,dog\nb.wav,1,1,cat\n",
      "classInd.txt": "1 A\n3 C\n",
      "list.txt": "A/x.avi 1\n",
    });
    assert.deepEqual(await esc50({ root, skips: new SkipLog() }).classes(), ["class_0", "cat"]);
    const ucf = ucf101({ videos: root, splitFile: join(root, "list.txt"), skips: new SkipLog() });
    await assert.rejects(ucf.classes(), /classInd\.txt: class 2 is not listed/);
  });
});
