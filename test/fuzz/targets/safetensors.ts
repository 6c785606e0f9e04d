/** Checkpoints: the safetensors decoder (model/safetensors.ts) and the checkpoint's JSON (model/checkpoint.ts). */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { readCheckpointInfo } from "../../../model/checkpoint.js";
import { decodeSafetensors, encodeSafetensors } from "../../../model/safetensors.js";
import { expectClearOutcome, expectThat, type FuzzInput, type FuzzTarget } from "../harness.js";

const utf8 = (ext: string, s: string): FuzzInput => ({ ext, bytes: new Uint8Array(Buffer.from(s)) });

/** A safetensors file with a hand-written header (what a foreign or damaged writer could produce). */
export function withHeader(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  return new Uint8Array(Buffer.concat([size, json, data]));
}

const INFO = {
  format: "vatt-checkpoint",
  version: 1,
  config: { preset: "tiny", video: { dim: 8 } },
  optimizer: { config: { kind: "adam", learningRate: 0.001 }, step: 12 },
  extra: { epoch: 1 },
};

const headerEntry = fc.record(
  {
    dtype: fc.constantFrom("F32", "I32", "F16", "BF16", 7, null),
    shape: fc.oneof(
      fc.array(fc.oneof(fc.nat(6), fc.constantFrom(-1, 0.5, 2 ** 32, 1e12)), { maxLength: 3 }),
      fc.constant("x"),
    ),
    data_offsets: fc.oneof(
      fc.tuple(fc.nat(64), fc.nat(64)),
      fc.tuple(fc.constantFrom(-8, 0.5, 2 ** 53, 1e20), fc.nat(64)),
      fc.constant(null),
      fc.constant([0]),
    ),
  },
  { requiredKeys: [] },
);

export const safetensorsTarget: FuzzTarget = {
  name: "safetensors",
  readers: "decodeSafetensors, readCheckpointInfo",
  async seeds() {
    const tensors = encodeSafetensors(
      {
        "param/w": { dtype: "F32", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
        "state/n": { dtype: "I32", shape: [2], data: Int32Array.from([7, -8]) },
        "param/s": { dtype: "F32", shape: [], data: Float32Array.from([0.5]) },
      },
      { format: "vatt-checkpoint", step: "12" },
    );
    return [{ ext: "safetensors", bytes: tensors }, utf8("json", JSON.stringify(INFO, null, 2))];
  },
  generate: fc.oneof(
    fc
      .tuple(
        fc.dictionary(
          fc.oneof(fc.constantFrom("__metadata__", "w"), fc.string({ maxLength: 4 })),
          fc.oneof(headerEntry, fc.jsonValue({ maxDepth: 1 })),
          { maxKeys: 3 },
        ),
        fc.uint8Array({ maxLength: 64 }),
      )
      .map(([header, data]): FuzzInput => ({ ext: "safetensors", bytes: withHeader(header, data) })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => utf8("json", JSON.stringify(v))),
  ),
  dictionary: [
    '"F32"',
    '"I32"',
    '"shape"',
    '"data_offsets"',
    "[",
    "]",
    "{",
    "}",
    ",",
    "-1",
    "1e20",
    "4294967296",
    "null",
    '"__metadata__"',
    '"format"',
    '"version"',
    "\u0000",
  ],
  quickRuns: 500,
  caseTimeoutMs: 3_000,
  async run(input, dir) {
    if (input.ext === "json") {
      const file = join(dir, "ckpt.safetensors");
      await writeFile(join(dir, "ckpt.json"), input.bytes);
      const info = await expectClearOutcome("readCheckpointInfo", [join(dir, "ckpt.json")], 2_000, () =>
        readCheckpointInfo(file),
      );
      if (info) {
        expectThat(
          "readCheckpointInfo",
          info.format === "vatt-checkpoint" &&
            info.version === 1 &&
            typeof info.config === "object" &&
            info.config !== null,
          `accepted ${JSON.stringify(info).slice(0, 200)} as a checkpoint's JSON`,
        );
        expectThat(
          "readCheckpointInfo",
          info.optimizer === undefined || Number.isSafeInteger(info.optimizer.step),
          `optimizer step ${JSON.stringify(info.optimizer)}`,
        );
      }
      return;
    }
    const decoded = await expectClearOutcome("decodeSafetensors", ["safetensors"], 2_000, async () =>
      decodeSafetensors(input.bytes),
    );
    if (!decoded) return;
    for (const [name, t] of Object.entries(decoded.tensors)) {
      expectThat(
        "decodeSafetensors",
        Array.isArray(t.shape) && t.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
        `${name} has shape ${JSON.stringify(t.shape)}`,
      );
      const count = t.shape.reduce((a, b) => a * b, 1);
      expectThat(
        "decodeSafetensors",
        count === t.data.length,
        `${name}: shape [${t.shape}] holds ${count} values, the data ${t.data.length}`,
      );
      expectThat(
        "decodeSafetensors",
        (t.dtype === "F32" && t.data instanceof Float32Array) ||
          (t.dtype === "I32" && t.data instanceof Int32Array),
        `${name}: dtype ${String(t.dtype)}`,
      );
    }
    for (const [k, v] of Object.entries(decoded.metadata)) {
      expectThat("decodeSafetensors", typeof v === "string", `metadata ${k} is a ${typeof v}`);
    }
  },
};
