/**
 * The pretraining run's configuration: one schema, validated with errors that name the key and the reason, read
 * from YAML or JSON, overridden by command-line flags, and saved as the effective config in the run directory.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";

/** One field of the schema: its type, range and default, and one line saying what it is. */
type Field =
  | { kind: "number"; default: number; min?: number; max?: number; integer?: boolean; help: string }
  | { kind: "string"; default: string; choices?: readonly string[]; help: string }
  | { kind: "optional-string"; help: string }
  | { kind: "boolean"; default: boolean; help: string };

export type Schema = { [key: string]: Field | Schema };

const isField = (x: Field | Schema): x is Field => typeof (x as Field).kind === "string";

/** The schema of `vatt pretrain`. Defaults are the CPU demo's; the paper's values are in the help. */
export const PRETRAIN_SCHEMA = {
  runDir: { kind: "string", default: "runs/latest", help: "where config, metrics, checkpoints and plots go" },
  seed: { kind: "number", default: 0, integer: true, min: 0, help: "the one seed of the run" },
  model: {
    preset: {
      kind: "string",
      default: "tiny",
      choices: ["tiny", "BBS", "MBS", "LBS", "MA-Medium"],
      help: "model preset (video-audio-text sizes)",
    },
    dropTokenRate: { kind: "number", default: 0.5, min: 0, max: 0.95, help: "DropToken rate (paper: 0.5)" },
    backend: {
      kind: "string",
      default: "auto",
      choices: ["auto", "node-gpu", "node", "wasm", "cpu"],
      help: "TensorFlow.js backend",
    },
  },
  data: {
    howto100m: { kind: "optional-string", help: "HowTo100M-layout folder (video-text-audio)" },
    audioset: { kind: "optional-string", help: "AudioSet-layout folder (video-audio, no text)" },
    parquet: { kind: "optional-string", help: "folder of shards written by `vatt prepare`" },
    howto100mWeight: { kind: "number", default: 1, min: 0, help: "mixing weight of HowTo100M examples" },
    audiosetWeight: { kind: "number", default: 1, min: 0, help: "mixing weight of AudioSet examples" },
    vocab: { kind: "optional-string", help: "vocabulary file (built from the captions when absent)" },
    shuffleBuffer: {
      kind: "number",
      default: 1000,
      integer: true,
      min: 0,
      help: "clip references shuffled together (bounded buffer; 0 keeps the file order)",
    },
    clipsPerVideo: {
      kind: "number",
      default: 1,
      integer: true,
      min: 1,
      help: "HowTo100M clips per video per pass (each around a random caption)",
    },
    fps: { kind: "number", default: 10, min: 0.1, help: "frames per second sampled from the video" },
    decodeShortSide: {
      kind: "number",
      default: 80,
      integer: true,
      min: 8,
      help: "short side decoded before the crop",
    },
    concurrency: {
      kind: "number",
      default: 8,
      integer: true,
      min: 1,
      max: 64,
      help:
        "clips decoded at once (examples are the same at any value; more overlaps decoding with the model step; " +
        "with the libav decoder they queue in its workers, and 32 keeps them busy through a training step)",
    },
    buffer: {
      kind: "number",
      default: 8,
      integer: true,
      min: 1,
      help: "decoded examples held ahead of the model",
    },
    decoder: {
      kind: "string",
      default: "auto",
      choices: ["auto", "libav", "process"],
      help:
        "who decodes: FFmpeg's libraries in long-lived workers (libav, ~4x less CPU a small clip), one ffmpeg " +
        "process per clip (process), or libav when it loads (auto)",
    },
    decoderIsolation: {
      kind: "string",
      default: "process",
      choices: ["process", "thread"],
      help:
        "where the libav decoder's workers run: child processes (a file that crashes the decoder costs its clip) or " +
        "threads of the run (a little cheaper, but such a crash ends the run and a hang leaves its thread behind)",
    },
    decodeWorkers: {
      kind: "number",
      default: 0,
      integer: true,
      min: 0,
      max: 64,
      help:
        "decoding workers of the libav decoder (0: one per core but one, which trains; a run that does not train, " +
        "or trains a model that leaves cores idle, may use them all)",
    },
    decodeTimeoutMs: {
      kind: "number",
      default: 30000,
      integer: true,
      min: 100,
      help: "per-clip decode limit",
    },
    retireAfter: {
      kind: "number",
      default: 3,
      integer: true,
      min: 0,
      help:
        "passes in a row a video may fail in every window it is asked for before it is retired: not asked for " +
        "again in the run, listed in RUN/retired-files.json (0: never)",
    },
    heldOutShare: {
      kind: "number",
      default: 0.2,
      min: 0,
      max: 0.9,
      help: "share of videos kept for evaluation",
    },
    follow: { kind: "boolean", default: false, help: "keep training as new videos and captions appear" },
  },
  augment: {
    crop: {
      kind: "string",
      default: "inception",
      choices: ["inception", "vgg", "centre"],
      help: "training crop: Inception random area/aspect, VGG scale jitter, or centre",
    },
    minArea: {
      kind: "number",
      default: 0.08,
      min: 0.01,
      max: 1,
      help: "smallest crop area share (Inception crop)",
    },
    flip: { kind: "number", default: 0.5, min: 0, max: 1, help: "chance of a horizontal flip of the clip" },
    cropIn: {
      kind: "string",
      default: "ffmpeg",
      choices: ["ffmpeg", "arrays"],
      help: "raw video: crop+resize+flip in ffmpeg's filter graph (faster) or in typed arrays (exact tf bilinear)",
    },
    colour: {
      kind: "boolean",
      default: true,
      help: "colour augmentation (brightness, saturation, contrast, hue)",
    },
    audioNoise: {
      kind: "number",
      default: 0.01,
      min: 0,
      max: 1,
      help: "audio noise sigma relative to max |x|",
    },
  },
  train: {
    batchSize: {
      kind: "number",
      default: 16,
      integer: true,
      min: 2,
      help: "examples per step (paper: 2048)",
    },
    steps: { kind: "number", default: 300, integer: true, min: 1, help: "optimiser steps (paper: 500k)" },
    learningRate: { kind: "number", default: 1e-3, min: 0, help: "peak learning rate (paper: 1e-4)" },
    finalLearningRate: {
      kind: "number",
      default: 1e-4,
      min: 0,
      help: "learning rate at the end (paper: 5e-5)",
    },
    warmupSteps: { kind: "number", default: 30, integer: true, min: 0, help: "linear warmup (paper: 10k)" },
    lambda: { kind: "number", default: 1, min: 0, help: "weight of MIL-NCE against NCE" },
    gradClipNorm: {
      kind: "number",
      default: 0,
      min: 0,
      help: "global gradient-norm clip, 0 = off (paper: off)",
    },
    checkpointEvery: {
      kind: "number",
      default: 100,
      integer: true,
      min: 1,
      help: "steps between checkpoints",
    },
    keepCheckpoints: { kind: "number", default: 3, integer: true, min: 1, help: "checkpoints kept" },
    logEvery: { kind: "number", default: 1, integer: true, min: 1, help: "steps between metrics lines" },
    evalEvery: {
      kind: "number",
      default: 0,
      integer: true,
      min: 0,
      help: "steps between evaluations, 0 = at the end",
    },
  },
  eval: {
    windows: {
      kind: "number",
      default: 4,
      integer: true,
      min: 1,
      help: "clips averaged per video embedding",
    },
    maxVideos: {
      kind: "number",
      default: 64,
      integer: true,
      min: 2,
      help: "held-out items evaluated at most, per dataset",
    },
    clipsPerVideo: {
      kind: "number",
      default: 4,
      integer: true,
      min: 1,
      help: "held-out HowTo100M stretches per video, each around one caption",
    },
  },
} as const satisfies Schema;

/** The value type a schema describes. */
export type ValueOf<S> = S extends { kind: "number" }
  ? number
  : S extends { kind: "string" }
    ? string
    : S extends { kind: "optional-string" }
      ? string | undefined
      : S extends { kind: "boolean" }
        ? boolean
        : { -readonly [K in keyof S]: ValueOf<S[K]> };

export type PretrainConfig = ValueOf<typeof PRETRAIN_SCHEMA>;

/** A configuration error: names the key, the value and what would be right. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Edit distance, for "did you mean" on misspelt keys. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

function suggestion(key: string, known: string[]): string {
  const best = known
    .map((k) => ({ k, d: editDistance(key.toLowerCase(), k.toLowerCase()) }))
    .sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, key.length / 3) ? ` Did you mean '${best.k}'?` : "";
}

/** A value as a message shows it; YAML anchors can make a circular one, which JSON.stringify refuses. */
function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return "a value that contains itself (a YAML alias to its own anchor)";
  }
}

function checkField(path: string, field: Field, value: unknown): unknown {
  const where = `config key '${path}'`;
  switch (field.kind) {
    case "number": {
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n !== "number" || !Number.isFinite(n)) {
        throw new ConfigError(path, `${where} must be a number, got ${shown(value)} (${field.help})`);
      }
      if (field.integer && !Number.isInteger(n)) {
        throw new ConfigError(path, `${where} must be a whole number, got ${n} (${field.help})`);
      }
      if (field.min !== undefined && n < field.min) {
        throw new ConfigError(path, `${where} must be >= ${field.min}, got ${n} (${field.help})`);
      }
      if (field.max !== undefined && n > field.max) {
        throw new ConfigError(path, `${where} must be <= ${field.max}, got ${n} (${field.help})`);
      }
      return n;
    }
    case "string":
    case "optional-string": {
      if (value === null && field.kind === "optional-string") return undefined;
      if (typeof value !== "string") {
        throw new ConfigError(path, `${where} must be a string, got ${shown(value)} (${field.help})`);
      }
      if (field.kind === "string" && field.choices && !field.choices.includes(value)) {
        throw new ConfigError(
          path,
          `${where} must be one of ${field.choices.join(", ")}, got '${value}'.${suggestion(value, [...field.choices])}`,
        );
      }
      return value;
    }
    case "boolean": {
      if (value === "true" || value === "false") return value === "true";
      if (typeof value !== "boolean") {
        throw new ConfigError(path, `${where} must be true or false, got ${shown(value)} (${field.help})`);
      }
      return value;
    }
  }
}

function defaultsOf(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(schema)) {
    if (isField(entry)) {
      if ("default" in entry) out[key] = entry.default;
    } else out[key] = defaultsOf(entry);
  }
  return out;
}

function merge(
  schema: Schema,
  base: Record<string, unknown>,
  input: unknown,
  prefix: string,
): Record<string, unknown> {
  if (input === undefined || input === null) return base;
  if (typeof input !== "object" || Array.isArray(input)) {
    const where = prefix ? `config key '${prefix}'` : "the config";
    throw new ConfigError(prefix || "(root)", `${where} must be a mapping of keys to values`);
  }
  const out = { ...base };
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    // Own keys only: 'toString' or 'constructor' must not find Object.prototype's members.
    const entry = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (entry === undefined) {
      throw new ConfigError(
        path,
        `unknown config key '${path}'.${suggestion(key, Object.keys(schema))} (see 'vatt pretrain --help-config')`,
      );
    }
    out[key] = isField(entry)
      ? checkField(path, entry, value)
      : merge(entry, base[key] as Record<string, unknown>, value, path);
  }
  return out;
}

/**
 * Builds the effective config: defaults, then each layer in order (a file, then flags). Every layer is a partial
 * nested object; flags may also be given as dotted keys ({"train.steps": "500"}).
 */
export function resolveConfig(...layers: unknown[]): PretrainConfig {
  let config = defaultsOf(PRETRAIN_SCHEMA);
  for (const layer of layers) config = merge(PRETRAIN_SCHEMA, config, undotted(layer), "");
  const c = config as PretrainConfig;
  if (!c.data.howto100m && !c.data.audioset && !c.data.parquet) {
    throw new ConfigError("data", "no dataset: set data.howto100m, data.audioset or data.parquet (a folder)");
  }
  if (c.train.finalLearningRate > c.train.learningRate) {
    throw new ConfigError(
      "train.finalLearningRate",
      `config key 'train.finalLearningRate' (${c.train.finalLearningRate}) must not exceed train.learningRate (${c.train.learningRate})`,
    );
  }
  return c;
}

/**
 * Defaults of any schema (e.g. the fine-tuning one) overridden by each layer in order; keys and values checked as
 * for pretraining. Cross-key rules are the caller's.
 */
export function resolveSchema<S extends Schema>(schema: S, ...layers: unknown[]): ValueOf<S> {
  let config = defaultsOf(schema);
  for (const layer of layers) config = merge(schema, config, undotted(layer), "");
  return config as ValueOf<S>;
}

/** {"train.steps": 5} -> {train: {steps: 5}}; nested objects pass through. */
function undotted(layer: unknown): unknown {
  if (layer === null || typeof layer !== "object" || Array.isArray(layer)) return layer;
  // Prototype-less records, so a '__proto__' key is a key (reported as unknown), not a prototype to set.
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, value] of Object.entries(layer as Record<string, unknown>)) {
    if (value === undefined) continue;
    const parts = key.split(".");
    let node = out;
    for (const part of parts.slice(0, -1)) {
      if (typeof node[part] !== "object" || node[part] === null) node[part] = Object.create(null);
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

/** Reads a YAML or JSON config file (YAML is a superset of JSON). Errors name the file and the line. */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      "(file)",
      `cannot read config file '${file}': ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    const first = (err as Error).message.split("\n")[0];
    throw new ConfigError("(file)", `config file '${file}' is not valid YAML or JSON: ${first}`);
  }
}

/** Every key with its default and help: what `vatt pretrain --help-config` prints. */
export function describeSchema(schema: Schema = PRETRAIN_SCHEMA, prefix = ""): string[] {
  const lines: string[] = [];
  for (const [key, entry] of Object.entries(schema)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!isField(entry)) {
      lines.push(...describeSchema(entry, path));
      continue;
    }
    const dflt = "default" in entry ? JSON.stringify(entry.default) : "(unset)";
    const choices = entry.kind === "string" && entry.choices ? ` [${entry.choices.join("|")}]` : "";
    lines.push(`  ${path.padEnd(26)} ${dflt.padEnd(14)} ${entry.help}${choices}`);
  }
  return lines;
}
