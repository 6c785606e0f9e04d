/**
 * caption.json and ontology.json: the streaming top-level-object scanner (datasets/json-scan.ts) under random
 * chunkings, HowTo100M's caption reader (datasets/howto100m.ts), the vocabulary word count (datasets/vocab.ts) and
 * AudioSet's ontology reader.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { SkipLog } from "../../../core/skips.js";
import { readOntology } from "../../../datasets/audioset.js";
import { howTo100M } from "../../../datasets/howto100m.js";
import { type JsonScanEvent, scanJsonObject, TopLevelObjectScanner } from "../../../datasets/json-scan.js";
import { countCaptionWords } from "../../../pipeline/vocab.js";
import {
  ContractViolation,
  collect,
  expectClearOutcome,
  expectSkipsSayWhere,
  expectThat,
  type FuzzInput,
  type FuzzTarget,
} from "../harness.js";

const text = (s: string): FuzzInput => ({ ext: "json", bytes: new Uint8Array(Buffer.from(s)) });

const CAPTIONS = {
  v1: { start: [0, 1.5, 4], end: [2, 3, 6.25], text: ["add the flour", "stir it", 'héllo {world} "q"'] },
  v2: { start: [], end: [], text: [] },
  日本: { start: [1], end: [2], text: ["日本語 🎉"] },
};

const ONTOLOGY = [
  {
    id: "/m/0dgw9r",
    name: "Human sounds",
    description: "d",
    citation_uri: "",
    positive_examples: [],
    child_ids: ["/m/09l8g"],
    restrictions: [],
  },
  { id: "/m/09l8g", name: "Human voice", description: "", child_ids: [] },
];

/** Scans `bytes` cut at `cuts` (sorted positions). */
function scanInChunks(bytes: Uint8Array, cuts: number[], maxValueBytes?: number): JsonScanEvent[] {
  const scanner = new TopLevelObjectScanner(maxValueBytes);
  const events: JsonScanEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...scanner.push(Buffer.from(bytes.subarray(from, cut))));
    from = cut;
  }
  return [...events, ...scanner.end()];
}

/** Cut positions drawn from the input's own bytes, so a case is a pure function of the input. */
function cutsOf(bytes: Uint8Array): number[] {
  const cuts = new Set<number>();
  for (let i = 0; i < bytes.length; i += 1 + (bytes[i] % 13)) cuts.add(i);
  return [...cuts].filter((c) => c > 0).sort((a, b) => a - b);
}

const captionValue = fc.oneof(
  fc.record({
    start: fc.array(fc.oneof(fc.double(), fc.nat(100), fc.constant(null), fc.string()), { maxLength: 4 }),
    end: fc.array(fc.oneof(fc.double(), fc.nat(100), fc.constant(null)), { maxLength: 4 }),
    text: fc.array(fc.oneof(fc.string(), fc.constant(null), fc.nat()), { maxLength: 4 }),
  }),
  fc.jsonValue({ maxDepth: 3 }),
);

export const jsonTarget: FuzzTarget = {
  name: "json",
  readers:
    "TopLevelObjectScanner (random chunkings), scanJsonObject, howTo100M refs, countCaptionWords, readOntology",
  async seeds() {
    return [
      text(JSON.stringify(CAPTIONS, null, 1)),
      text(JSON.stringify(CAPTIONS)),
      text(JSON.stringify(ONTOLOGY)),
      text('{"v1": {"start": [0], "end": [1], "text": ["a"]}, "n": 1e3, "s": "x", "t": true}'),
    ];
  },
  generate: fc
    .dictionary(
      fc.oneof(fc.constantFrom("v1", "v2", "__proto__", "constructor"), fc.string()),
      captionValue,
      { maxKeys: 5 },
    )
    .map((o) => text(JSON.stringify(o))),
  dictionary: [
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\n",
    "\r\n",
    "\ufeff",
    '"v1":',
    "1e999",
    "-1",
    "NaN",
    "null",
    '"\\ud800"',
    "\u00e9",
    "\ud83c\udf89",
    '{"start":[1],"end":[0],"text":["x"]}',
    "\\u0000",
    "0.5",
  ],
  quickRuns: 150,
  caseTimeoutMs: 5_000,
  async run(input, dir) {
    const file = join(dir, "caption.json");
    await writeFile(file, input.bytes);
    const names = [file];

    // The scanner gives the same events however the file is cut into chunks.
    const whole = await expectClearOutcome("TopLevelObjectScanner", names, 2_000, async () =>
      scanInChunks(input.bytes, [], 256),
    );
    const cut = await expectClearOutcome("TopLevelObjectScanner (chunked)", names, 2_000, async () =>
      scanInChunks(input.bytes, cutsOf(input.bytes), 256),
    );
    if (whole && cut && !isDeepStrictEqual(whole, cut)) {
      throw new ContractViolation(
        `TopLevelObjectScanner: chunked scan differs from the whole scan:\n${JSON.stringify(whole).slice(0, 400)}\n` +
          `vs\n${JSON.stringify(cut).slice(0, 400)}`,
      );
    }
    await expectClearOutcome("scanJsonObject", names, 2_000, async () => {
      for await (const e of scanJsonObject(file, { chunkBytes: 7, maxValueBytes: 64 })) {
        expectThat(
          "scanJsonObject",
          Number.isInteger(e.line) && e.line >= 1,
          `line ${e.line} is not a line number`,
        );
      }
    });

    // HowTo100M: every video "has" a file (one empty v1.mp4), so refs are built for the keys named v1.
    await writeFile(join(dir, "v1.mp4"), "");
    const skips = new SkipLog(1000);
    const refs = await expectClearOutcome("howTo100M", names, 3_000, () =>
      collect(
        howTo100M({
          root: dir,
          csv: false,
          captions: file,
          videos: dir,
          seed: 1,
          skips,
          clipsPerVideo: 2,
          randomTimeProbability: 0.5,
        }).refs(0),
      ),
    );
    expectSkipsSayWhere("howTo100M", skips, names);
    for (const r of refs ?? []) {
      expectThat(
        "howTo100M",
        Number.isFinite(r.start) && Number.isFinite(r.end) && r.start >= 0 && r.end > r.start,
        `window [${r.start}, ${r.end}] of ${r.id} is not a window`,
      );
      expectThat(
        "howTo100M",
        r.captions.every((c) => typeof c.text === "string" && c.end >= c.start && c.start >= 0),
        `a caption of ${r.id} is malformed: ${JSON.stringify(r.captions)}`,
      );
    }

    const wordSkips = new SkipLog(1000);
    const counts = await expectClearOutcome("countCaptionWords", names, 3_000, () =>
      countCaptionWords(file, wordSkips),
    );
    expectSkipsSayWhere("countCaptionWords", wordSkips, names);
    if (counts) {
      for (const [w, n] of counts.counts)
        expectThat("countCaptionWords", typeof w === "string" && n >= 1, `count ${w}: ${n}`);
    }

    const ontologySkips = new SkipLog(1000);
    const nodes = await expectClearOutcome("readOntology", names, 3_000, () =>
      readOntology(file, ontologySkips),
    );
    expectSkipsSayWhere("readOntology", ontologySkips, names);
    for (const n of nodes ?? []) {
      expectThat(
        "readOntology",
        typeof n.id === "string" && Array.isArray(n.child_ids),
        `node ${JSON.stringify(n)}`,
      );
    }
  },
};
