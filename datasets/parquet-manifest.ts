/**
 * The bookkeeping of a shard folder: file names, one small JSON "receipt" per finished shard, and the folder's
 * manifest.json.
 *
 *   OUT/shard-00003-of-00016.parquet   the shard (written as .partial, fsynced, renamed)
 *   OUT/shard-00003-of-00016.json      its receipt: rows, bytes, sha256, counts, settings (written after the rename)
 *   OUT/manifest.json                  every shard's entry + totals, written once all N receipts exist
 *
 * A shard is finished exactly when its receipt exists and names a file of the recorded size: a process killed at
 * any point leaves either a `.partial` (ignored and overwritten) or a complete shard without a receipt (written
 * again, to the same bytes). Receipts are per shard, so independent processes (`--shard i`) never write the same
 * file; whichever finishes last writes manifest.json, and since its content is a pure function of the receipts,
 * two processes racing to write it write the same bytes (atomically, by rename).
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";
import { SHARD_SCHEMA, SHARD_SCHEMA_VERSION } from "./parquet-schema.js";

/** Everything that changes the bytes of a shard: shards are reused only when these match exactly. */
export interface PrepareSettings {
  schemaVersion: number;
  kind: string;
  numShards: number;
  fps: number;
  shortSide: number;
  sampleRate: number;
  jpegQuality: number;
  audio: "int16";
  rowGroupBytes: number;
  /** HowTo100M videos are stored in rows of at most this many seconds (0: whole videos). */
  maxRowSeconds: number;
  /** SHA-256 and size of the vocabulary used for token_ids, or null when none was given. */
  vocab: { sha256: string; size: number } | null;
}

/** A finished shard's receipt (the manifest's entry for it plus what a resumed run must check). */
export interface ShardReceipt {
  format: "vatt-shard";
  index: number;
  file: string;
  rows: number;
  bytes: number;
  sha256: string;
  frames: number;
  /** Seconds of media in the shard (sum of the spans). */
  seconds: number;
  /** Rows of this shard the decoder skipped, by "where:reason". */
  skipped: Record<string, number>;
  settings: PrepareSettings;
}

export interface ShardManifest {
  format: "vatt-parquet-shards";
  schemaVersion: number;
  settings: PrepareSettings;
  columns: { name: string; type: string }[];
  numShards: number;
  rows: number;
  frames: number;
  seconds: number;
  bytes: number;
  /** Decode skips summed over shards, by "where:reason". */
  skipped: Record<string, number>;
  shards: Omit<ShardReceipt, "format" | "settings" | "skipped">[];
}

export const MANIFEST_FILE = "manifest.json";

/** "shard-00003-of-00016": sorts in shard order and says how many there are. */
export function shardStem(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `shard-${pad(index)}-of-${pad(count)}`;
}

export function shardFile(index: number, count: number): string {
  return `${shardStem(index, count)}.parquet`;
}

export function receiptFile(index: number, count: number): string {
  return `${shardStem(index, count)}.json`;
}

/** Deterministic JSON: keys in the order the objects were built (they are built in one fixed order). */
function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function writeReceipt(out: string, receipt: ShardReceipt): Promise<void> {
  return writeFileAtomic(join(out, receiptFile(receipt.index, receipt.settings.numShards)), json(receipt));
}

/** The settings that differ between two runs, as "name a vs b" phrases; empty when they match. */
export function settingsDifferences(a: PrepareSettings, b: PrepareSettings): string[] {
  const keys = Object.keys(a) as (keyof PrepareSettings)[];
  return keys
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k} ${JSON.stringify(b[k])} (now ${JSON.stringify(a[k])})`);
}

/**
 * The receipt of shard `index` when that shard is finished with these settings; undefined when it must be
 * written (no receipt, or its file is missing or of another size). Throws when the receipt was written with other
 * settings: mixing them would make a folder of inconsistent shards.
 */
export async function finishedReceipt(
  out: string,
  index: number,
  settings: PrepareSettings,
): Promise<ShardReceipt | undefined> {
  const path = join(out, receiptFile(index, settings.numShards));
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  let receipt: ShardReceipt;
  try {
    receipt = JSON.parse(text) as ShardReceipt;
  } catch {
    return undefined; // a torn receipt cannot exist (atomic rename), but a hand-edited one is just redone
  }
  const differences = settingsDifferences(settings, receipt.settings ?? ({} as PrepareSettings));
  if (differences.length > 0) {
    throw new Error(
      `${path}: this shard was prepared with other settings: ${differences.join(", ")}. Use another --out ` +
        "folder, or delete the shard files there to start over",
    );
  }
  const size = await stat(join(out, receipt.file)).then(
    (s) => s.size,
    () => -1,
  );
  return size === receipt.bytes ? receipt : undefined;
}

function sumCounts(into: Record<string, number>, add: Record<string, number>): void {
  for (const [k, v] of Object.entries(add)) into[k] = (into[k] ?? 0) + v;
}

/** The manifest of a complete set of receipts (sorted by index). */
export function buildManifest(receipts: readonly ShardReceipt[]): ShardManifest {
  const sorted = [...receipts].sort((a, b) => a.index - b.index);
  const settings = sorted[0].settings;
  const skipped: Record<string, number> = {};
  for (const r of sorted) sumCounts(skipped, r.skipped);
  const total = (pick: (r: ShardReceipt) => number) => sorted.reduce((n, r) => n + pick(r), 0);
  return {
    format: "vatt-parquet-shards",
    schemaVersion: SHARD_SCHEMA_VERSION,
    settings,
    columns: SHARD_SCHEMA.fields.map((f) => ({ name: f.name, type: String(f.type) })),
    numShards: settings.numShards,
    rows: total((r) => r.rows),
    frames: total((r) => r.frames),
    seconds: Math.round(total((r) => r.seconds) * 1000) / 1000,
    bytes: total((r) => r.bytes),
    skipped: Object.fromEntries(Object.entries(skipped).sort(([a], [b]) => a.localeCompare(b))),
    shards: sorted.map(({ index, file, rows, bytes, sha256, frames, seconds }) => ({
      index,
      file,
      rows,
      bytes,
      sha256,
      frames,
      seconds,
    })),
  };
}

/**
 * Writes manifest.json when every shard of `settings.numShards` has a finished receipt; returns its path, or
 * undefined while some are missing (other processes still at work).
 */
export async function writeManifestIfComplete(
  out: string,
  settings: PrepareSettings,
): Promise<string | undefined> {
  const receipts: ShardReceipt[] = [];
  for (let i = 0; i < settings.numShards; i++) {
    const r = await finishedReceipt(out, i, settings);
    if (!r) return undefined;
    receipts.push(r);
  }
  const path = join(out, MANIFEST_FILE);
  await writeFileAtomic(path, json(buildManifest(receipts)));
  return path;
}

/** Reads and checks a shard folder's manifest.json (training reads shards through it). */
export async function readShardManifest(dir: string): Promise<ShardManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Error(
      `${path}: no shard manifest: run 'vatt prepare --out ${dir}' to the end (it is written once every shard is done)`,
    );
  }
  let manifest: ShardManifest;
  try {
    manifest = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${path}: not valid JSON (${(err as Error).message}); run 'vatt prepare --out ${dir}' again`,
    );
  }
  if (manifest === null || typeof manifest !== "object" || manifest.format !== "vatt-parquet-shards") {
    throw new Error(`${path}: not a vatt shard manifest (format '${String(manifest.format)}')`);
  }
  if (manifest.schemaVersion !== SHARD_SCHEMA_VERSION) {
    throw new Error(
      `${path}: shards of schema version ${manifest.schemaVersion}, this vatt reads version ` +
        `${SHARD_SCHEMA_VERSION}: prepare them again with this version`,
    );
  }
  const problem = manifestProblem(manifest);
  if (problem) throw new Error(`${path}: ${problem}; run 'vatt prepare --out ${dir}' again`);
  return manifest;
}

/** What is wrong with the parts of a manifest that training reads (settings.vocab, the shard files), if anything. */
function manifestProblem(m: ShardManifest): string | undefined {
  const vocab = (m.settings as Partial<PrepareSettings> | null)?.vocab;
  if (
    m.settings === null ||
    typeof m.settings !== "object" ||
    (vocab !== null && typeof vocab !== "object")
  ) {
    return "its settings (with vocab: null or {sha256, size}) are missing or malformed";
  }
  if (!Array.isArray(m.shards)) return "it has no list of shards";
  // A shard is a plain file name in the folder: a path would read files elsewhere.
  const bad = m.shards.findIndex(
    (s) => typeof s?.file !== "string" || !/^[^/\\]+$/.test(s.file) || s.file === "." || s.file === "..",
  );
  return bad >= 0
    ? `shard ${bad} has no plain file name (${JSON.stringify(m.shards[bad]?.file)})`
    : undefined;
}
