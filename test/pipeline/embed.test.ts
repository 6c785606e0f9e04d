import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { tableFromIPC } from "apache-arrow";
import { synthesizeDataset } from "../../datasets/synth.js";
import { resolveConfig } from "../../pipeline/config.js";
import { embedDataset } from "../../pipeline/embed.js";
import { runPretraining } from "../../pipeline/pretrain.js";
import { resolveCheckpoint } from "../../sinks/checkpoints.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-embed-"));
  await synthesizeDataset({
    kind: "howto100m",
    out: join(dir, "howto"),
    videos: 3,
    seed: 5,
    width: 96,
    height: 64,
    fps: 10,
    minSeconds: 6,
    maxSeconds: 8,
  });
  const config = resolveConfig({
    runDir: join(dir, "run"),
    data: { howto100m: join(dir, "howto"), heldOutShare: 0, decodeShortSide: 64 },
    train: { steps: 1, batchSize: 2, warmupSteps: 0, evalEvery: 0 },
  });
  await runPretraining(config, { log: () => {}, skipFinalEval: true });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("vatt embed", () => {
  it("writes one row per clip with every common-space embedding, from a run directory", async () => {
    const out = join(dir, "emb.arrow");
    const { rows } = await embedDataset({
      checkpoint: join(dir, "run"),
      dataset: join(dir, "howto"),
      kind: "howto100m",
      out,
      windows: 2,
    });
    assert.equal(rows, 6);
    const table = tableFromIPC(await readFile(out));
    assert.equal(table.numRows, 6);
    assert.deepEqual(
      table.schema.fields.map((f) => f.name),
      ["id", "source", "clip", "start", "end", "video_va", "video_vt", "audio_va", "text_vt"],
    );
    const first = table.get(0)!;
    const second = table.get(1)!;
    assert.equal(first.id, second.id);
    assert.deepEqual([first.clip, second.clip], [0, 1]);
    assert.ok(second.start > first.start, "windows spread over the video");
    for (const col of ["video_va", "video_vt", "audio_va", "text_vt"]) {
      const v = Array.from(first[col] as Iterable<number>);
      assert.ok(v.length > 0 && v.every(Number.isFinite), col);
    }
  });

  it("says what a bad checkpoint path is and what to give instead", async () => {
    await assert.rejects(
      resolveCheckpoint(join(dir, "nope")),
      /does not exist: give a run directory, a checkpoint folder or a \.safetensors file/,
    );
    await assert.rejects(resolveCheckpoint(join(dir, "howto")), /holds no checkpoint/);
    await assert.rejects(
      embedDataset({
        checkpoint: join(dir, "run"),
        dataset: join(dir, "howto"),
        kind: "howto100m",
        out: join(dir, "x.csv"),
      }),
      /\.arrow or \.parquet/,
    );
  });
});
