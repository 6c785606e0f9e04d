import assert from "node:assert/strict";
import { test } from "node:test";
import {
  compareCodePoints,
  countWords,
  loadVocabulary,
  PAD,
  tokenize,
  UNK,
  Vocabulary,
  vocabularyFromCounts,
  words,
} from "../../operators/tokenize.js";
import { fixtureDir } from "../datasets/fixtures.js";

const VOCAB = new Vocabulary([
  "<pad>",
  "<bos>",
  "<eos>",
  "<unk>",
  "the",
  "flour",
  "dont",
  "café",
  "日本",
  "x2",
]);

test("words: punctuation stripped (not split on), lowercased, split on any whitespace", () => {
  assert.deepEqual(words("Pour THE flour, then... don't stop!"), [
    "pour",
    "the",
    "flour",
    "then",
    "dont",
    "stop",
  ]);
  assert.deepEqual(words("  tabs\tand\nnew\u00a0lines  "), ["tabs", "and", "new", "lines"]);
  assert.deepEqual(words("e-mail x_2 (x2) 3.5kg"), ["email", "x2", "x2", "35kg"]);
  assert.deepEqual(words("!!! ... 🎉"), []);
  assert.deepEqual(words(""), []);
});

test("words: Unicode letters and digits survive, case folds, composed and decomposed forms agree", () => {
  assert.deepEqual(words("Café CAFÉ cafe\u0301"), ["café", "café", "café"]);
  assert.deepEqual(words("日本、語。"), ["日本語"]);
  assert.deepEqual(words("ΣΟΦΙΑ Straße ١٢٣"), ["σοφια", "straße", "١٢٣"]);
});

test("tokenize: known words, <unk>, padding with 0 to 16, clipping to 16, no <bos>/<eos>", () => {
  const ids = tokenize("The FLOUR, don't café 日本 zebra", VOCAB);
  assert.equal(ids.length, 16);
  assert.deepEqual(Array.from(ids.slice(0, 7)), [4, 5, 6, 7, 8, UNK, PAD]);
  assert.ok(ids.slice(6).every((id) => id === PAD));
  const long = tokenize(Array.from({ length: 40 }, () => "the").join(" "), VOCAB);
  assert.deepEqual(Array.from(long), new Array(16).fill(4));
  assert.deepEqual(Array.from(tokenize("", VOCAB)), new Array(16).fill(PAD));
  assert.deepEqual(Array.from(tokenize("the flour the", VOCAB, 2)), [4, 5]);
});

test("tokenize writes into a shared buffer at an offset", () => {
  const out = new Int32Array(32).fill(-1);
  tokenize("flour", VOCAB, 16, out, 16);
  assert.equal(out[15], -1);
  assert.deepEqual(Array.from(out.slice(16, 18)), [5, PAD]);
});

test("vocabularyFromCounts: specials first, then by count, ties in code-point order, clipped to size", () => {
  const counts = new Map<string, number>();
  countWords(counts, "b a c a b a \u{1d49c} \uff5a d");
  const vocab = vocabularyFromCounts(counts, 8);
  assert.deepEqual(vocab.tokens, ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c", "d"]);
  const all = vocabularyFromCounts(counts, 100);
  // U+FF5A sorts before U+1D49C by code point although its UTF-16 unit is larger than the surrogate 0xD835.
  assert.deepEqual(all.tokens.slice(-2), ["\uff5a", "\u{1d49c}"]);
  assert.ok(compareCodePoints("\uff5a", "\u{1d49c}") < 0);
  assert.ok("\uff5a" > "\u{1d49c}", "UTF-16 order would get it wrong");
  assert.throws(() => vocabularyFromCounts(counts, 3), /size must be an integer >= 4/);
});

test("vocabulary text round trip and a clear error for a file without the special tokens", async () => {
  assert.deepEqual(Vocabulary.fromText(VOCAB.toText()).tokens, VOCAB.tokens);
  const root = await fixtureDir({ "bad.txt": "the\nflour\n" });
  await assert.rejects(
    loadVocabulary(`${root}/bad.txt`),
    /bad\.txt: vocabulary line 1 must be '<pad>', found 'the'/,
  );
});
