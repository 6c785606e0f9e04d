import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SkipLog } from "../../core/skips.js";
import { manifest } from "../../datasets/manifest.js";
import { collect, fixtureDir } from "../datasets/fixtures.js";
import { corpusRoot } from "./harness.js";
import { manifestTarget } from "./targets/manifest.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: clip-list manifests", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(manifestTarget);
    assert.ok(corpus >= 6);
    assert.equal(generated, manifestTarget.quickRuns);
  });

  it("cells that are objects (even with a toString key) are bad rows, not TypeErrors", async () => {
    const root = await fixtureDir({
      "m.jsonl": `${JSON.stringify({ path: "a.mp4", start: { toString: 1 }, end: 2 })}\n${JSON.stringify({ path: "a.mp4", start: 0, end: 2, labels: [{ toString: 1 }] })}\n`,
    });
    const skips = new SkipLog();
    assert.deepEqual(
      await collect(manifest({ path: join(root, "m.jsonl"), skips, checkFiles: false }).refs(0)),
      [],
    );
    const messages = skips.lastEvents().map((e) => e.message);
    assert.match(messages[0], /m\.jsonl line 1: times must be numbers/);
    assert.match(messages[1], /m\.jsonl line 2: labels must be integers >= 0, got '\{"toString":1\}'/);
  });

  it("a Parquet footer announcing 2 GB of metadata is refused, naming the file, before anything that size is held", async () => {
    const bytes = await readFile(join(corpusRoot(), "manifest", "footer-claims-2gb.parquet"));
    assert.equal(bytes.readUInt32LE(bytes.length - 8), 0x7fffffff, "the corpus file claims 2 GB");
    const root = await fixtureDir({ "m.parquet": bytes });
    const before = process.memoryUsage().rss;
    await assert.rejects(
      collect(manifest({ path: join(root, "m.parquet"), skips: new SkipLog() }).refs(0)),
      (err: Error) =>
        err.constructor === Error && /m\.parquet: not a readable Parquet file/.test(err.message),
    );
    assert.ok(process.memoryUsage().rss - before < 256 * 2 ** 20, "resident memory grew by less than 256 MB");
  });

  it("a file on which parquet-wasm traps is an Error naming it, and the next file still reads", async () => {
    const corpus = join(corpusRoot(), "manifest");
    const root = await fixtureDir({
      "bad.parquet": await readFile(join(corpus, "bug-wasm-panic.parquet")),
      "good.parquet": await readFile(join(corpus, "clips.parquet")),
    });
    const read = (name: string) =>
      collect(manifest({ path: join(root, name), skips: new SkipLog(), checkFiles: false }).refs(0));
    await assert.rejects(read("bad.parquet"), /bad\.parquet: not a readable Parquet file \(unreachable\)/);
    assert.equal((await read("good.parquet")).length, 2);
  });
});
