/** Vocabulary files (operators/tokenize.ts loadVocabulary) and tokenising with whatever they hold. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { loadVocabulary, tokenize } from "../../../operators/tokenize.js";
import { expectClearOutcome, expectThat, type FuzzInput, type FuzzTarget } from "../harness.js";

const utf8 = (s: string): FuzzInput => ({ ext: "txt", bytes: new Uint8Array(Buffer.from(s)) });
const SPECIAL = "<pad>\n<bos>\n<eos>\n<unk>\n";

export const vocabTarget: FuzzTarget = {
  name: "vocab",
  readers: "loadVocabulary, tokenize",
  async seeds() {
    return [
      utf8(`${SPECIAL}the\nflour\nstir\n日本語\n`),
      utf8(`${SPECIAL.replaceAll("\n", "\r\n")}a\r\nb\r\n`),
      utf8(SPECIAL),
    ];
  },
  generate: fc
    .array(fc.oneof(fc.constantFrom("<pad>", "<bos>", "<eos>", "<unk>", "", "the", " ", "\r"), fc.string()), {
      maxLength: 12,
    })
    .chain((lines) =>
      fc.boolean().map((withSpecial) => utf8((withSpecial ? SPECIAL : "") + lines.join("\n"))),
    ),
  dictionary: [
    "\n",
    "\r\n",
    "\r",
    "<pad>",
    "<unk>",
    "\ufeff",
    "\u0000",
    "\ud800",
    " ",
    "\u2028",
    "__proto__",
    "constructor",
  ],
  quickRuns: 400,
  caseTimeoutMs: 3_000,
  async run(input, dir) {
    const file = join(dir, "vocab.txt");
    await writeFile(file, input.bytes);
    const vocab = await expectClearOutcome("loadVocabulary", [file], 2_000, () => loadVocabulary(file));
    if (!vocab) return;
    const text = Buffer.from(input.bytes).toString("utf8");
    const ids = tokenize(`${text.slice(0, 200)} __proto__ constructor toString`, vocab, 32);
    expectThat(
      "tokenize",
      ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocab.size),
      `ids ${Array.from(ids)} outside 0..${vocab.size - 1}`,
    );
  },
};
