/** Run configuration files (pipeline/config.ts): YAML or JSON read, then resolved against the schema. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError, PRETRAIN_SCHEMA, readConfigFile, resolveConfig } from "../../../pipeline/config.js";
import {
  ContractViolation,
  expectClearOutcome,
  expectThat,
  type FuzzInput,
  type FuzzTarget,
} from "../harness.js";

const utf8 = (ext: string, s: string): FuzzInput => ({ ext, bytes: new Uint8Array(Buffer.from(s)) });

/** Every key of `value` is a key of `schema`, every leaf a finite number, a string, a boolean or absent. */
function checkAgainstSchema(
  value: Record<string, unknown>,
  schema: Record<string, unknown>,
  prefix: string,
): void {
  for (const key of Object.keys(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    expectThat(
      "resolveConfig",
      Object.hasOwn(schema, key),
      `the resolved config has key '${path}', which the schema lacks`,
    );
    const entry = schema[key] as Record<string, unknown>;
    const v = value[key];
    if (typeof entry.kind === "string") {
      const ok =
        v === undefined ||
        typeof v === "string" ||
        typeof v === "boolean" ||
        (typeof v === "number" && Number.isFinite(v));
      expectThat("resolveConfig", ok, `'${path}' resolved to ${typeof v}`);
    } else {
      expectThat("resolveConfig", typeof v === "object" && v !== null, `'${path}' is not a section`);
      checkAgainstSchema(v as Record<string, unknown>, entry, path);
    }
  }
}

const KEYS = [
  "seed",
  "runDir",
  "model",
  "preset",
  "dropTokenRate",
  "data",
  "parquet",
  "fps",
  "train",
  "steps",
  "learningRate",
  "finalLearningRate",
  "train.steps",
  "model.preset",
  "toString",
  "constructor",
  "__proto__",
  "hasOwnProperty",
  "valueOf",
];

const yamlish = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(
      0,
      1,
      -1,
      0.5,
      Number.POSITIVE_INFINITY,
      "10",
      "x",
      "tiny",
      "true",
      true,
      null,
      "1e3",
      "",
      "NaN",
    ),
    fc.dictionary(fc.constantFrom(...KEYS), tie("node"), { maxKeys: 4 }),
    fc.array(tie("node"), { maxLength: 3 }),
  ),
}));

export const configTarget: FuzzTarget = {
  name: "config",
  readers: "readConfigFile (YAML, JSON), resolveConfig",
  async seeds() {
    return [
      utf8(
        "yaml",
        "runDir: runs/x\nseed: 3\nmodel:\n  preset: tiny\n  dropTokenRate: 0.5\ndata:\n  parquet: shards\n  fps: 10\ntrain:\n  steps: 100\n",
      ),
      utf8(
        "json",
        '{"seed": 1, "model": {"preset": "tiny"}, "data": {"howto100m": "data/howto"}, "train": {"steps": 5}}',
      ),
      utf8("yaml", "base: &b\n  preset: tiny\nmodel: *b\n"),
    ];
  },
  generate: fc
    .tuple(yamlish.node, fc.boolean())
    .map(([v, json]) => utf8(json ? "json" : "yaml", json ? (JSON.stringify(v) ?? "null") : toYaml(v, ""))),
  dictionary: [
    ": ",
    "\n",
    "  ",
    "- ",
    "&a ",
    "*a",
    "&a [*a]",
    "!!binary",
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "#",
    "---",
    "...",
    "\t",
    "1e309",
    "0x10",
    ".inf",
    "~",
    "<<: *a",
    "toString: 1",
    "__proto__: {}",
    "seed: ",
    "\ufeff",
  ],
  quickRuns: 300,
  caseTimeoutMs: 5_000,
  async run(input, dir) {
    const ext = input.ext === "json" ? "json" : "yaml";
    const file = join(dir, `config.${ext}`);
    await writeFile(file, input.bytes);
    const parsed = await expectClearOutcome("readConfigFile", [file], 3_000, () => readConfigFile(file));
    if (parsed === undefined) return;
    try {
      const config = resolveConfig({ data: { parquet: "shards" } }, parsed);
      checkAgainstSchema(config as unknown as Record<string, unknown>, PRETRAIN_SCHEMA, "");
    } catch (err) {
      if (err instanceof ContractViolation) throw err;
      if (!(err instanceof ConfigError)) {
        throw new ContractViolation(
          `resolveConfig threw ${(err as Error).constructor?.name}: ${(err as Error).message}\n${(err as Error).stack?.split("\n").slice(1, 5).join("\n")}`,
        );
      }
      expectThat(
        "resolveConfig",
        err.message.includes("config") || err.message.includes(err.key),
        `a ConfigError that names neither the config nor the key: ${err.message}`,
      );
    }
  },
};

/** A small YAML writer for generated trees (block style, so the YAML parser's paths are exercised). */
function toYaml(v: unknown, indent: string): string {
  if (Array.isArray(v))
    return v.length === 0 ? "[]" : v.map((x) => `\n${indent}- ${toYaml(x, `${indent}  `)}`).join("");
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v);
    if (entries.length === 0) return "{}";
    return entries.map(([k, x]) => `\n${indent}${k}: ${toYaml(x, `${indent}  `)}`).join("");
  }
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}
