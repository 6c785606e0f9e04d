import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decodeSafetensors } from "../../model/safetensors.js";
import { corpusRoot } from "./harness.js";
import { safetensorsTarget, withHeader } from "./targets/safetensors.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: safetensors checkpoints and their JSON", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(safetensorsTarget);
    assert.ok(corpus >= 8);
    assert.equal(generated, safetensorsTarget.quickRuns);
  });

  it("a header announcing a terabyte is refused before anything is read or allocated", async () => {
    const bytes = new Uint8Array(
      await readFile(join(corpusRoot(), "safetensors", "header-claims-1tb.safetensors")),
    );
    assert.equal(Buffer.from(bytes).readBigUInt64LE(0), 2n ** 40n);
    assert.throws(
      () => decodeSafetensors(bytes, "ckpt.safetensors"),
      /^Error: ckpt\.safetensors: the header claims 1099511627776 bytes, the file holds \d+ after the size/,
    );
  });

  it("a shape announcing 10^12 values over 8 bytes of data is refused, not allocated", () => {
    const bytes = withHeader(
      { w: { dtype: "F32", shape: [1e6, 1e6], data_offsets: [0, 8] } },
      new Uint8Array(8),
    );
    assert.throws(
      () => decodeSafetensors(bytes, "x.safetensors"),
      /x\.safetensors: w: shape \[1000000,1000000\] of F32 does not fill bytes 0\.\.8/,
    );
  });

  it("malformed entries are Errors naming the file, not TypeErrors", () => {
    for (const header of [
      { w: null },
      { w: { dtype: "F32", shape: [2] } },
      { w: { dtype: "F16", shape: [], data_offsets: [0, 2] } },
    ]) {
      assert.throws(
        () => decodeSafetensors(withHeader(header, new Uint8Array(8)), "x.safetensors"),
        (err: Error) => err.constructor === Error && err.message.startsWith("x.safetensors: "),
      );
    }
  });
});
