import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, resolveConfig } from "../../pipeline/config.js";
import { configTarget } from "./targets/config.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: config files", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(configTarget);
    assert.ok(corpus >= 5);
    assert.equal(generated, configTarget.quickRuns);
  });

  it("names of Object.prototype members are unknown keys, and __proto__ does not set a prototype", () => {
    const base = { data: { parquet: "shards" } };
    for (const [layer, key] of [
      [{ toString: null }, "toString"],
      [{ model: { constructor: 1 } }, "model.constructor"],
      [JSON.parse('{"__proto__": {"seed": 5}}'), "__proto__"],
    ] as const) {
      assert.throws(
        () => resolveConfig(base, layer),
        (err: ConfigError) =>
          err instanceof ConfigError && err.message.startsWith(`unknown config key '${key}'`),
      );
    }
  });

  it("a value that contains itself is a ConfigError, not a TypeError", () => {
    const loop: unknown[] = [];
    loop.push(loop);
    assert.throws(() => resolveConfig({ data: { parquet: "s" } }, { seed: loop }), ConfigError);
  });
});
