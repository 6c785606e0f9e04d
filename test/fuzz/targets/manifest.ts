/** Clip-list manifests (datasets/manifest.ts): CSV, JSONL and Parquet, chosen by the input's extension. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import fc from "fast-check";
import { Table, writeParquet } from "parquet-wasm";
import { SkipLog } from "../../../core/skips.js";
import { type ManifestFormat, manifest } from "../../../datasets/manifest.js";
import {
  collect,
  expectClearOutcome,
  expectSkipsSayWhere,
  expectThat,
  type FuzzInput,
  type FuzzTarget,
} from "../harness.js";

const utf8 = (ext: string, s: string): FuzzInput => ({ ext, bytes: new Uint8Array(Buffer.from(s)) });

function parquetSeed(): FuzzInput {
  const table = tableFromArrays({
    path: ["a.mp4", "b.mp4", "a.mp4"],
    start: Float64Array.from([0, 1.5, 3]),
    end: Float64Array.from([2, 4, 1]),
    text: ["add the flour", "stir", ""],
    labels: ["1 2", "3", ""],
  });
  return { ext: "parquet", bytes: writeParquet(Table.fromIPCStream(tableToIPC(table, "stream"))) };
}

const KEYS = ["path", "start", "end", "labels", "text", "id", "toString", "valueOf", "__proto__", "PATH"];

const row = fc.dictionary(
  fc.constantFrom(...KEYS),
  fc.oneof(
    fc.constantFrom("a.mp4", "/abs/b.mp4", "", " ", "1", "-1", "2.5", "1e309", "3;7", "[1, 2]", "x"),
    fc.double(),
    fc.array(fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant({ toString: 1 })), {
      maxLength: 3,
    }),
    fc.jsonValue({ maxDepth: 2 }),
    fc.constant({ toString: 1, valueOf: 2 }),
  ),
  { maxKeys: 6 },
);

export const manifestTarget: FuzzTarget = {
  name: "manifest",
  readers: "manifest() refs over .csv, .jsonl and .parquet clip lists",
  async seeds() {
    return [
      utf8("csv", 'path,start,end,text,labels\na.mp4,0,2,"add the flour, slowly","1 2"\nb.mp4,1.5,4,,3\n'),
      utf8(
        "jsonl",
        '{"path": "a.mp4", "start": 0, "end": 2, "labels": [1, 2], "text": "hi"}\n{"path": "b.mp4", "start": 1, "end": 3, "id": 7}\n',
      ),
      parquetSeed(),
    ];
  },
  generate: fc.oneof(
    fc
      .array(row, { maxLength: 5 })
      .map((rows) => utf8("jsonl", rows.map((r) => JSON.stringify(r)).join("\n"))),
    fc
      .array(
        fc.array(fc.constantFrom("a.mp4", "0", "1", "2.5", "-1", "", '"1,2"', "x", '"', "1e309"), {
          minLength: 1,
          maxLength: 6,
        }),
        { maxLength: 5 },
      )
      .map((rows) => utf8("csv", ["path,start,end,labels", ...rows.map((r) => r.join(","))].join("\n"))),
  ),
  dictionary: [
    ",",
    '"',
    "\n",
    "{",
    "}",
    "[",
    "]",
    ":",
    '"path"',
    '"start"',
    "-1",
    "1e309",
    '{"toString":1}',
    "null",
    "PAR1",
    "\u0000",
    "\ufeff",
  ],
  quickRuns: 150,
  caseTimeoutMs: 10_000,
  async run(input, dir) {
    const format = (["csv", "jsonl", "parquet"].includes(input.ext) ? input.ext : "csv") as ManifestFormat;
    const file = join(dir, `clips.${format}`);
    await writeFile(file, input.bytes);
    await writeFile(join(dir, "a.mp4"), "");
    const names = [file];
    const skips = new SkipLog(1000);
    const refs = await expectClearOutcome("manifest", names, 5_000, () =>
      collect(manifest({ path: file, skips }).refs(0)),
    );
    expectSkipsSayWhere("manifest", skips, names);
    for (const r of refs ?? []) {
      expectThat(
        "manifest",
        Number.isFinite(r.start) && Number.isFinite(r.end) && r.start >= 0 && r.end > r.start,
        `window [${r.start}, ${r.end}] is not a window`,
      );
      expectThat(
        "manifest",
        r.labels.every((l) => Number.isSafeInteger(l) && l >= 0),
        `labels ${r.labels}`,
      );
      expectThat("manifest", typeof r.id === "string" && typeof r.path === "string", `id ${String(r.id)}`);
    }
  },
};
