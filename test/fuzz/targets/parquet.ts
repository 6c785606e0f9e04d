/**
 * Parquet shards (datasets/parquet.ts shardRows over datasets/parquet-schema.ts) and their folder's manifest.json
 * (pipeline/prepare-manifest.ts readShardManifest, datasets/parquet.ts shardFiles).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import fc from "fast-check";
import { Table, writeParquet } from "parquet-wasm";
import { shardFiles, shardRows } from "../../../datasets/parquet.js";
import { buildManifest, MANIFEST_FILE, type ShardReceipt } from "../../../datasets/parquet-manifest.js";
import { type PreparedRow, shardRecordBatch } from "../../../datasets/parquet-schema.js";
import { writeParquetFile } from "../../../sinks/parquet-writer.js";
import { collect, expectClearOutcome, expectThat, type FuzzInput, type FuzzTarget } from "../harness.js";

function row(i: number): PreparedRow {
  return {
    id: `v${i}`,
    source: "howto100m",
    path: `/d/v${i}.mp4`,
    duration: 9,
    spanStart: 0,
    spanEnd: 2,
    sourceFps: 25,
    sourceWidth: 32,
    sourceHeight: 24,
    fps: 2,
    width: 16,
    height: 12,
    frames: [new Uint8Array([0xff, 0xd8, 1, 2]), new Uint8Array([0xff, 0xd8, 3])],
    sampleRate: 16000,
    hasAudio: i % 2 === 0,
    audio: Int16Array.from([1, -2, 3]),
    captions: [{ start: 0, end: 1, text: "add the flour" }],
    tokenIds: [Int32Array.from({ length: 16 }, (_, k) => k)],
    labels: [i],
  };
}

/** A real two-row-group shard, written by the shard writer. */
async function shardSeed(): Promise<FuzzInput> {
  const dir = await mkdtemp(join(tmpdir(), "vatt-fuzz-shard-"));
  try {
    const file = join(dir, "s.parquet");
    async function* batches() {
      yield shardRecordBatch([row(0), row(1)]);
      yield shardRecordBatch([row(2)]);
    }
    await writeParquetFile(file, batches(), { rowGroupBytes: 1 });
    return { ext: "parquet", bytes: new Uint8Array(await readFile(file)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A Parquet file of another schema (same column names, other types): not a shard. */
function foreignSeed(): FuzzInput {
  const table = tableFromArrays({ id: Int32Array.from([1, 2]), frames: ["a", "b"], duration: ["x", "y"] });
  return { ext: "parquet", bytes: writeParquet(Table.fromIPCStream(tableToIPC(table, "stream"))) };
}

function manifestSeed(): FuzzInput {
  const settings = {
    schemaVersion: 1,
    kind: "howto100m",
    numShards: 1,
    fps: 2,
    shortSide: 12,
    sampleRate: 16000,
    jpegQuality: 80,
    audio: "int16" as const,
    rowGroupBytes: 1,
    maxRowSeconds: 0,
    vocab: null,
  };
  const receipt: ShardReceipt = {
    format: "vatt-shard",
    index: 0,
    file: "shard-00000-of-00001.parquet",
    rows: 3,
    bytes: 100,
    sha256: "0".repeat(64),
    frames: 6,
    seconds: 6,
    skipped: {},
    settings,
  };
  return {
    ext: "json",
    bytes: new Uint8Array(Buffer.from(JSON.stringify(buildManifest([receipt]), null, 2))),
  };
}

const manifestValue = fc.record(
  {
    format: fc.constantFrom("vatt-parquet-shards", "x", 1),
    schemaVersion: fc.constantFrom(1, 2, "1", null),
    settings: fc.oneof(
      fc.constant(null),
      fc.record({ vocab: fc.constantFrom(null, { sha256: "a", size: 3 }, 7) }, { requiredKeys: [] }),
    ),
    shards: fc.oneof(
      fc.array(
        fc.oneof(
          fc.record(
            { file: fc.constantFrom("a.parquet", "../x.parquet", "/etc/passwd", "", 3) },
            { requiredKeys: [] },
          ),
          fc.constant(null),
        ),
        { maxLength: 3 },
      ),
      fc.constantFrom(null, 5, "x", {}),
    ),
  },
  { requiredKeys: [] },
);

export const parquetTarget: FuzzTarget = {
  name: "parquet",
  readers: "shardRows (shard files), readShardManifest + shardFiles (manifest.json)",
  async seeds() {
    return [await shardSeed(), foreignSeed(), manifestSeed()];
  },
  generate: manifestValue.map(
    (m): FuzzInput => ({ ext: "json", bytes: new Uint8Array(Buffer.from(JSON.stringify(m))) }),
  ),
  dictionary: [
    "PAR1",
    "\u0000",
    "\u00ff\u00ff\u00ff\u007f",
    '"shards"',
    '"file"',
    '"../x"',
    "null",
    "[",
    "{",
    "}",
    "]",
    "1e309",
    "-1",
  ],
  quickRuns: 200,
  caseTimeoutMs: 10_000,
  async run(input, dir) {
    if (input.ext === "json") {
      const file = join(dir, MANIFEST_FILE);
      await writeFile(file, input.bytes);
      const shards = await expectClearOutcome("shardFiles", [file], 2_000, () => shardFiles(dir));
      for (const f of shards?.files ?? []) {
        expectThat(
          "shardFiles",
          typeof f === "string" && dirname(f) === dir,
          `shard file ${f} is outside the folder ${dir}`,
        );
      }
      return;
    }
    const file = join(dir, "shard.parquet");
    await writeFile(file, input.bytes);
    const rows = await expectClearOutcome("shardRows", [file], 8_000, () => collect(shardRows(file), 1000));
    for (const r of rows ?? []) {
      expectThat(
        "shardRows",
        typeof r.id === "string" && Array.isArray(r.frames) && r.frames.every((f) => f instanceof Uint8Array),
        `row ${String(r.id)}: frames ${typeof r.frames}`,
      );
      expectThat(
        "shardRows",
        r.audio instanceof Int16Array && Array.isArray(r.captions) && Array.isArray(r.labels),
        `row ${r.id}: audio/captions`,
      );
    }
  },
};
