import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { parseCommandArgs } from "../../bin/cli.js";
import { vocabCommand } from "../../bin/commands/vocab.js";
import { SkipLog } from "../../core/skips.js";
import { countCaptionWords } from "../../pipeline/vocab.js";
import { fixtureDir } from "../datasets/fixtures.js";

const CAPTIONS = JSON.stringify({
  v1: { start: [0, 2], end: [3, 5], text: ["Pour the flour!", "the FLOUR, the bowl"] },
  v2: { start: [1], end: [2], text: ["Zürich café, the café"] },
  broken: { start: [1] },
  v3: { start: [0, 1], end: [1, 2], text: ["bowl", 17] },
});

async function runVocab(args: string[], t: { mock: { method: typeof import("node:test").mock.method } }) {
  const logged: string[] = [];
  t.mock.method(console, "log", (line: string) => logged.push(line));
  t.mock.method(console, "error", () => {});
  const parsed = parseCommandArgs(vocabCommand, args);
  assert.notEqual(parsed, "help");
  const code = await vocabCommand.run(parsed as Exclude<typeof parsed, "help">);
  return { code, logged };
}

test("countCaptionWords streams caption.json and skips entries without a text array", async () => {
  const root = await fixtureDir({ "caption.json": CAPTIONS });
  const skips = new SkipLog();
  const { counts, videos, captions } = await countCaptionWords(join(root, "caption.json"), skips);
  assert.equal(videos, 3);
  assert.equal(captions, 4);
  assert.equal(counts.get("the"), 4);
  assert.equal(counts.get("café"), 2);
  assert.equal(skips.count, 1);
  assert.match(skips.lastEvents()[0].message, /caption\.json line 1: video "broken" has no "text" array/);
});

test("vatt vocab writes specials then words by frequency, and the same bytes on every run", async (t) => {
  const root = await fixtureDir({ "caption.json": CAPTIONS });
  const out1 = join(root, "v1.txt");
  const out2 = join(root, "v2.txt");
  const first = await runVocab(
    ["--captions", join(root, "caption.json"), "--size", "65536", "--out", out1, "--json"],
    t,
  );
  assert.equal(first.code, 0);
  await runVocab(["--captions", join(root, "caption.json"), "--out", out2], t);
  const bytes1 = await readFile(out1);
  assert.deepEqual(bytes1, await readFile(out2));
  assert.equal(
    bytes1.toString("utf8"),
    ["<pad>", "<bos>", "<eos>", "<unk>", "the", "bowl", "café", "flour", "pour", "zürich", ""].join("\n"),
  );
  const summary = JSON.parse(first.logged[0]);
  assert.equal(summary.size, 10);
  assert.deepEqual(summary.skipped, { "vocab:caption.json:bad-captions": 1 });
  await runVocab(["--captions", join(root, "caption.json"), "--size", "6", "--out", out1], t);
  assert.equal((await readFile(out1, "utf8")).split("\n").length - 1, 6);
});

test("vatt vocab: a missing caption file is one clear error", async (t) => {
  await assert.rejects(
    runVocab(["--captions", "/nonexistent/caption.json", "--out", "/tmp/x"], t),
    /cannot read --captions/,
  );
  await assert.rejects(runVocab(["--out", "x"], t), /--captions is required/);
});
