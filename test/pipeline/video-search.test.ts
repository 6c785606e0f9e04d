import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { saveCheckpoint } from "../../model/checkpoint.js";
import { disposeModel, type VattModel } from "../../model/vatt.js";
import { Vocabulary } from "../../operators/tokenize.js";
import { loadVatt } from "../../pipeline/embedder.js";
import { exportOnnx } from "../../pipeline/export.js";
import { indexVideos, searchVideos } from "../../pipeline/video-search.js";
import { saveCheckpointFolder } from "../../sinks/checkpoints.js";
import { makeGarbage, makeMedia } from "../media.js";
import { testBackend, tinyTestConfig } from "../model/helpers.js";
import { randomisedModel } from "../model/random-weights.js";

let dir = "";
let exportDir = "";
let videos = "";
let model: VattModel;
const vocab = new Vocabulary(["<pad>", "<bos>", "<eos>", "<unk>", "slice", "the", "tomato"]);

before(async () => {
  const backend = (await testBackend()) === "cpu" ? "cpu" : "wasm";
  dir = await mkdtemp(join(tmpdir(), "vatt-video-search-"));
  const runDir = join(dir, "run");
  exportDir = join(dir, "export");
  videos = join(dir, "videos");
  model = randomisedModel(tinyTestConfig({ textConfig: { vocabSize: 64 } }), 7);
  await saveCheckpointFolder(runDir, 1, 1, (d) =>
    saveCheckpoint(join(d, "model.safetensors"), model, undefined, { runConfig: { data: { fps: 10 } } }),
  );
  await writeFile(join(runDir, "vocab.txt"), vocab.toText());
  await exportOnnx({ checkpoint: runDir, out: exportDir, backend });
  await mkdir(join(videos, "sub"), { recursive: true });
  await makeMedia(videos, "a", { seconds: 2, width: 80, height: 60, fps: 10 });
  await makeMedia(join(videos, "sub"), "b", {
    seconds: 1.6,
    width: 80,
    height: 60,
    fps: 10,
    audioRate: false,
  });
  await makeGarbage(join(videos, "broken.mp4"));
});
after(async () => {
  disposeModel(model);
  await rm(dir, { recursive: true, force: true });
});

describe("vatt index / vatt search", () => {
  it("indexes every window of every readable video, counts the unreadable, and finds the best window", async () => {
    const out = join(dir, "index");
    const r = await indexVideos({ model: exportDir, videos, out });
    assert.equal(r.found, 3);
    // 2 s -> windows at 0 and 0.8 s; 1.6 s -> 0 and 0.8 s (0.8 s clips side by side).
    assert.equal(r.rows, 4);
    assert.equal(r.skips.count, 1);
    assert.match(r.skips.lastEvents()[0].message, /broken\.mp4/);

    const { hits, known } = await searchVideos({ index: out, query: "slice the tomato", k: 3 });
    assert.deepEqual(known, ["slice", "the", "tomato"]);
    assert.equal(hits.length, 3);
    // The best hit is the window whose embedding is nearest the query's, computed here without the index.
    const m = await loadVatt(exportDir);
    const [q] = await m.embedText(["slice the tomato"]);
    const all = [
      ...(await m.embedVideoWindows(join(videos, "a.mp4"))).map((w) => ({
        ...w,
        file: join(videos, "a.mp4"),
      })),
      ...(await m.embedVideoWindows(join(videos, "sub", "b.mp4"))).map((w) => ({
        ...w,
        file: join(videos, "sub", "b.mp4"),
      })),
    ].map((w) => ({ file: w.file, start: w.start, score: m.similarity(q, w) }));
    await m.close();
    all.sort((x, y) => y.score - x.score);
    assert.equal(hits[0].file, all[0].file);
    assert.ok(Math.abs(hits[0].start - all[0].start) < 1e-9);
    assert.ok(Math.abs(hits[0].score - all[0].score) < 1e-4);
    assert.ok(hits[0].score >= hits[1].score && hits[1].score >= hits[2].score);
    // Every engine gives the same windows here (four rows: the scan's 256 candidates are all of them), ties
    // (a.mp4 and b.mp4 are the same video) going to the earlier row in each.
    for (const engine of ["exact", "quantized", "graph"] as const) {
      const other = await searchVideos({ index: out, query: "slice the tomato", k: 3, engine });
      assert.deepEqual(
        other.hits.map((h) => [h.file, h.start]),
        hits.map((h) => [h.file, h.start]),
        engine,
      );
    }
  });

  it("embeds only new files when the folder grows", async () => {
    const out = join(dir, "grow");
    await indexVideos({ model: exportDir, videos, out });
    await copyFile(join(videos, "a.mp4"), join(videos, "c.mp4"));
    const r = await indexVideos({ model: exportDir, videos, out });
    // c.mp4 is new; broken.mp4 was never indexed, so it is tried (and skipped) again.
    assert.equal(r.embedded, 2);
    assert.equal(r.rows, 2);
    assert.equal(r.live, 6);
    await rm(join(videos, "c.mp4"));
  });

  it("says what is wrong with an empty folder and a query of unknown words", async () => {
    const empty = join(dir, "empty");
    await mkdir(empty);
    await assert.rejects(
      indexVideos({ model: exportDir, videos: empty, out: join(dir, "x") }),
      /no videos under/,
    );
    await assert.rejects(
      searchVideos({ index: join(dir, "index"), query: "zebra" }),
      /none of the words of 'zebra' are in the model's vocabulary/,
    );
    await assert.rejects(searchVideos({ index: join(dir, "nope"), query: "tomato" }), /nope/);
  });
});
