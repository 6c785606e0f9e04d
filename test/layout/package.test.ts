/**
 * The package's face: scripts import `vatt` and `vatt/data` by name (the exports map), and `vatt/data` stays free of
 * TensorFlow.js. The stream below is the README's "Composing a pipeline in a script" example, run on a small
 * synthetic dataset.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { makeTempDir, removeDir } from "../media.js";

/** The repository root: `vatt` resolves there by its own name (a package may import itself). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("the package's face", () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir("vatt-package-");
  });
  after(() => removeDir(dir));

  it('runs the README\'s script example through `import ... from "vatt"`', async () => {
    const {
      captionText,
      howTo100M,
      loadVocabulary,
      orderedRefs,
      pretrainingBatches,
      SkipLog,
      synthesizeDataset,
    } = await import("vatt");
    const root = join(dir, "howto100m");
    await synthesizeDataset({
      kind: "howto100m",
      out: root,
      videos: 2,
      seed: 1,
      width: 64,
      height: 48,
      fps: 10,
    });
    await writeFile(
      join(dir, "vocab.txt"),
      ["<pad>", "<bos>", "<eos>", "<unk>", "slice", "tomato"].join("\n"),
    );

    const skips = new SkipLog(); // bad rows and files are counted here, never fatal
    const vocab = await loadVocabulary(join(dir, "vocab.txt"));
    const source = howTo100M({ root, seed: 0, skips, frames: 8, fps: 10 });
    const refs = orderedRefs(source, {
      seed: 0,
      shuffleBuffer: 16,
      epochs: Number.POSITIVE_INFINITY,
      shard: { index: 0, count: 1 },
    });
    const batches = [];
    for await (const batch of pretrainingBatches(refs, {
      seed: 0,
      batchSize: 2,
      concurrency: 2,
      buffer: 2,
      skips,
      decode: { frames: 8, fps: 10, sampleRate: 16_000, shortSide: 48 },
      augment: { outHeight: 32, outWidth: 32, text: captionText(vocab, 5, 16) },
    })) {
      batches.push(batch);
      if (batches.length === 2) break; // the next batch is decoded only as this loop asks for it
    }
    assert.equal(batches.length, 2);
    assert.equal(batches[0].video.length, 2 * 8 * 32 * 32 * 3);
    assert.equal(batches[0].textIds.length, 2 * 5 * 16);
    assert.ok(
      batches[0].textMask.some((m: number) => m === 1),
      "captions reached the batch",
    );
  });

  it("exports the model side from `vatt` and keeps `vatt/data` free of TensorFlow.js", () => {
    // A fresh process each: what an import loads is only visible from the start.
    const loaded = (spec: string) => {
      // TensorFlow.js is CommonJS: whatever loaded it left it in the shared require cache.
      const script = [
        'import { createRequire } from "node:module";',
        `const m = await import(${JSON.stringify(spec)});`,
        "const cache = Object.keys(createRequire(import.meta.url).cache);",
        "console.log(JSON.stringify({ names: Object.keys(m), tf: cache.some((f) => f.includes('@tensorflow')) }));",
      ].join("\n");
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        encoding: "utf8",
        cwd: ROOT,
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as { names: string[]; tf: boolean };
    };
    const data = loaded("vatt/data");
    assert.equal(data.tf, false, "vatt/data loaded TensorFlow.js");
    for (const name of [
      "howTo100M",
      "audioSet",
      "orderedRefs",
      "pretrainingBatches",
      "decodeClip",
      "prepareShards",
    ])
      assert.ok(data.names.includes(name), `vatt/data exports ${name}`);
    const all = loaded("vatt");
    assert.equal(all.tf, true);
    for (const name of ["runPretraining", "createModel", "loadCheckpoint", "embedDataset", "howTo100M"])
      assert.ok(all.names.includes(name), `vatt exports ${name}`);
  });
});
