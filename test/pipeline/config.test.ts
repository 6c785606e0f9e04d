import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, describeSchema, readConfigFile, resolveConfig } from "../../pipeline/config.js";

const data = { data: { howto100m: "data/howto100m" } };

function keyOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return `${err.key} | ${err.message}`;
  }
  assert.fail("expected a ConfigError");
}

describe("resolveConfig", () => {
  it("fills defaults and layers a file then flags, flags last", () => {
    const c = resolveConfig(data, { train: { steps: 50, batchSize: 4 } }, { "train.steps": "70", seed: "3" });
    assert.equal(c.train.steps, 70);
    assert.equal(c.train.batchSize, 4);
    assert.equal(c.seed, 3);
    assert.equal(c.model.preset, "tiny");
    assert.equal(c.data.howto100m, "data/howto100m");
    assert.equal(c.data.audioset, undefined);
  });

  it("names the key and the reason for a bad value", () => {
    assert.match(
      keyOf(() => resolveConfig(data, { train: { steps: -1 } })),
      /^train\.steps \| .*must be >= 1, got -1/,
    );
    assert.match(
      keyOf(() => resolveConfig(data, { train: { batchSize: 2.5 } })),
      /^train\.batchSize \| .*whole number/,
    );
    assert.match(
      keyOf(() => resolveConfig(data, { seed: "abc" })),
      /^seed \| .*must be a number, got "abc"/,
    );
    assert.match(
      keyOf(() => resolveConfig(data, { model: { preset: "MBX" } })),
      /^model\.preset \| .*one of .*Did you mean 'MBS'/,
    );
    assert.match(
      keyOf(() => resolveConfig(data, { data: { follow: "yes" } })),
      /^data\.follow \| .*true or false/,
    );
  });

  it("refuses unknown keys with a suggestion", () => {
    assert.match(
      keyOf(() => resolveConfig(data, { train: { stpes: 5 } })),
      /^train\.stpes \| unknown config key 'train\.stpes'\. Did you mean 'steps'\?/,
    );
    assert.match(
      keyOf(() => resolveConfig(data, { trian: {} })),
      /Did you mean 'train'/,
    );
  });

  it("refuses impossible combinations", () => {
    assert.match(
      keyOf(() => resolveConfig({})),
      /^data \| no dataset/,
    );
    assert.match(
      keyOf(() => resolveConfig(data, { train: { learningRate: 1e-4, finalLearningRate: 1e-3 } })),
      /^train\.finalLearningRate/,
    );
  });

  it("reads YAML and JSON files and reports a broken one with its name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vatt-config-"));
    try {
      await writeFile(join(dir, "run.yaml"), "train:\n  steps: 12\ndata:\n  audioset: /data/as\n");
      await writeFile(join(dir, "run.json"), JSON.stringify({ train: { steps: 13 }, ...data }));
      await writeFile(join(dir, "bad.yaml"), "train: [unclosed\n");
      assert.equal(resolveConfig(await readConfigFile(join(dir, "run.yaml"))).train.steps, 12);
      assert.equal(resolveConfig(await readConfigFile(join(dir, "run.json"))).train.steps, 13);
      await assert.rejects(
        readConfigFile(join(dir, "bad.yaml")),
        /config file '.*bad\.yaml' is not valid YAML/,
      );
      await assert.rejects(
        readConfigFile(join(dir, "none.yaml")),
        /cannot read config file '.*none\.yaml': ENOENT/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("describes every key with its default", () => {
    const lines = describeSchema();
    assert.ok(lines.some((l) => /train\.steps\s+300/.test(l)));
    assert.ok(lines.some((l) => /model\.preset\s+"tiny".*\[tiny\|BBS\|MBS\|LBS\|MA-Medium\]/.test(l)));
  });
});
