import assert from "node:assert/strict";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { randomFor } from "../../core/random.js";
import {
  appendRows,
  chooseEngine,
  createEmbeddingIndex,
  EXACT_BELOW,
  type FileStamp,
  filesToEmbed,
  GRAPH_FROM,
  type IndexRows,
  openEmbeddingIndex,
  searchEmbeddingIndex,
} from "../../sinks/embedding-index.js";
import { exactTopK, l2NormaliseRows } from "../../sinks/vector-search.js";
import { makeTempDir, removeDir } from "../media.js";

const MODEL = { id: "run-1/step-100", preset: "tiny" };

function gaussians(n: number, seed: number, purpose: string): Float32Array {
  const rng = randomFor(seed, 0, 0, purpose);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** `n` unit vectors around `clusters` random centres (spread `noise`): the structure real embeddings have. */
function clustered(n: number, dim: number, clusters: number, noise: number, seed: number): Float32Array {
  const centres = l2NormaliseRows(gaussians(clusters * dim, seed, "centres"), dim);
  const rng = randomFor(seed, 0, 1, "members");
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters);
    for (let j = 0; j < dim; j++) out[i * dim + j] = centres[c * dim + j] + noise * rng.normal();
  }
  return l2NormaliseRows(out, dim);
}

/** Rows for `files`, `perFile` clips each, with vectors from `vt` (dim 8) and `va` (dim 4) drawn by seed. */
function rowsFor(files: string[], perFile: number, seed: number): IndexRows {
  const n = files.length * perFile;
  const rows: IndexRows = { ids: [], files: [], starts: [], ends: [], vectors: {} };
  files.forEach((f, fi) => {
    for (let c = 0; c < perFile; c++) {
      rows.ids.push(`${f}#${c}@${seed}`);
      rows.files.push(f);
      rows.starts.push(c * 3.2);
      rows.ends.push(c * 3.2 + 3.2 + fi / 10);
    }
  });
  rows.vectors.video_vt = gaussians(n * 8, seed, "vt");
  rows.vectors.video_va = gaussians(n * 4, seed, "va");
  return rows;
}

const stamp = (file: string, mtimeMs = 1000, size = 10): FileStamp => ({ file, mtimeMs, size });

/** Float64 inner products and a full sort: the reference the partial selection must agree with. */
function sortedReference(matrix: Float32Array, dim: number, query: Float32Array, k: number) {
  const scores = Array.from({ length: matrix.length / dim }, (_, r) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += matrix[r * dim + j] * query[j];
    return { r, s };
  });
  return scores.sort((a, b) => b.s - a.s || a.r - b.r).slice(0, k);
}

describe("sinks/vector-search exactTopK", () => {
  it("returns the true top k, best first, as a full sort does", () => {
    const dim = 16;
    const matrix = l2NormaliseRows(gaussians(3000 * dim, 1, "matrix"), dim);
    for (let q = 0; q < 5; q++) {
      const query = l2NormaliseRows(gaussians(dim, 2 + q, "query"), dim);
      for (const k of [1, 10, 57]) {
        const top = exactTopK(matrix, dim, query, k);
        const ref = sortedReference(matrix, dim, query, k);
        assert.deepEqual(
          Array.from(top.rows),
          ref.map((x) => x.r),
        );
        for (const [i, x] of ref.entries()) assert.ok(Math.abs(top.scores[i] - x.s) < 1e-5);
      }
    }
  });

  it("skips rows marked dead and returns all rows when k exceeds them", () => {
    const dim = 4;
    const matrix = l2NormaliseRows(gaussians(50 * dim, 3, "m"), dim);
    const query = matrix.slice(7 * dim, 8 * dim); // row 7 is its own best match
    const alive = new Uint8Array(50).fill(1);
    alive[7] = 0;
    const top = exactTopK(matrix, dim, query, 100, alive);
    assert.equal(top.rows.length, 49);
    assert.ok(!top.rows.includes(7));
    const ref = sortedReference(matrix, dim, query, 50).filter((x) => x.r !== 7);
    assert.deepEqual(
      Array.from(top.rows),
      ref.map((x) => x.r),
    );
  });

  it("rejects k <= 0, a query of the wrong width and a zero vector", () => {
    const m = new Float32Array(8).fill(0.5);
    assert.throws(() => exactTopK(m, 4, new Float32Array(4), 0), /k must be a positive integer/);
    assert.throws(() => exactTopK(m, 4, new Float32Array(3), 1), /query has 3 dimensions, the vectors 4/);
    assert.throws(() => l2NormaliseRows(new Float32Array(8), 4, "q"), /q: row 0 is all zeros/);
  });
});

describe("sinks/embedding-index", () => {
  let root: string;
  before(async () => {
    root = await makeTempDir("vatt-index-");
  });
  after(() => removeDir(root));

  it("round-trips rows through Parquet: reopened, it holds the same rows and answers the same", async () => {
    const dir = join(root, "roundtrip");
    const index = await createEmbeddingIndex(dir, MODEL, { video_vt: 8, video_va: 4 });
    const rows = rowsFor(["a.mp4", "b.mp4"], 3, 1);
    await appendRows(index, rows, [stamp("a.mp4"), stamp("b.mp4")]);
    const query = gaussians(8, 9, "q");
    const hits = searchEmbeddingIndex(index, query, { k: 4 });
    const again = await openEmbeddingIndex(dir);
    assert.deepEqual(again.ids, rows.ids);
    assert.deepEqual(again.files, rows.files);
    assert.deepEqual(again.starts, rows.starts);
    assert.deepEqual(again.ends, rows.ends);
    // Stored normalised: each vector is the input scaled to unit length.
    const unit = l2NormaliseRows(Float32Array.from(rows.vectors.video_va!), 4);
    assert.deepEqual(Array.from(again.vectors.video_va!.subarray(0, 24)), Array.from(unit));
    assert.deepEqual(searchEmbeddingIndex(again, query, { k: 4 }), hits);
    // The hits are the exact top 4 by cosine similarity, with the row's metadata.
    const ref = sortedReference(
      l2NormaliseRows(Float32Array.from(rows.vectors.video_vt!), 8),
      8,
      l2NormaliseRows(Float32Array.from(query), 8),
      4,
    );
    assert.deepEqual(
      hits.map((h) => h.id),
      ref.map((x) => rows.ids[x.r]),
    );
    assert.equal(hits[0].file, rows.files[ref[0].r]);
    assert.equal(hits[0].end, rows.ends[ref[0].r]);
    // Searching the other space by name.
    const va = searchEmbeddingIndex(again, unit.slice(4, 8), { k: 1, column: "video_va" });
    assert.equal(va[0].id, rows.ids[1]);
  });

  it("a grown folder embeds only new or changed files; old rows stay, changed files' old rows go", async () => {
    const dir = join(root, "grow");
    const first = await createEmbeddingIndex(dir, MODEL, { video_vt: 8 });
    const r1 = rowsFor(["a.mp4", "b.mp4"], 2, 1);
    delete r1.vectors.video_va;
    await appendRows(first, r1, [stamp("a.mp4"), stamp("b.mp4")]);

    const reopened = await createEmbeddingIndex(dir, MODEL, { video_vt: 8 });
    const folder = [stamp("a.mp4"), stamp("b.mp4", 2000, 10), stamp("c.mp4"), stamp("empty.mp4")];
    assert.deepEqual(
      filesToEmbed(reopened, folder).map((s) => s.file),
      ["b.mp4", "c.mp4", "empty.mp4"],
    );
    const r2 = rowsFor(["b.mp4", "c.mp4"], 2, 2);
    delete r2.vectors.video_va;
    await appendRows(reopened, r2, folder.slice(1));
    assert.deepEqual(filesToEmbed(reopened, folder), []);

    const grown = await openEmbeddingIndex(dir);
    assert.equal(grown.ids.length, 8); // all rows stay on disk
    assert.equal(grown.live, 6); // b.mp4's first two are superseded
    assert.deepEqual(
      grown.manifest.parts.map((p) => p.rows),
      [2 + 2, 4],
    );
    // Every live row is found, and b.mp4's old rows never are: search for each by its own vector.
    const live = new Set([...r1.ids.slice(0, 2), ...r2.ids]);
    for (let r = 0; r < grown.ids.length; r++) {
      const [hit] = searchEmbeddingIndex(grown, grown.vectors.video_vt!.slice(r * 8, r * 8 + 8), { k: 1 });
      if (live.has(grown.ids[r])) assert.equal(hit.id, grown.ids[r]);
      else assert.notEqual(hit.id, grown.ids[r]);
    }
    for (const engine of ["exact", "quantized"] as const) {
      const all = searchEmbeddingIndex(grown, new Float32Array(8).fill(1), { k: 100, engine });
      assert.deepEqual(new Set(all.map((h) => h.id)), live, engine);
    }
  });

  it("graph search finds >= 95 % of the exact top 10 on clustered vectors, and keeps its graph", async () => {
    const dir = join(root, "ann");
    const dim = 32;
    const n = 3000;
    const opts = { exactBelow: 1000, graphFrom: 2000 };
    const index = await createEmbeddingIndex(dir, MODEL, { video_vt: dim }, opts);
    const vectors = clustered(n, dim, 40, 0.15, 5);
    const files = Array.from({ length: n }, (_, i) => `v${Math.floor(i / 10)}.mp4`);
    const rows: IndexRows = {
      ids: files.map((f, i) => `${f}#${i % 10}`),
      files,
      starts: files.map((_, i) => i % 10),
      ends: files.map((_, i) => (i % 10) + 1),
      vectors: { video_vt: vectors },
    };
    await appendRows(
      index,
      rows,
      [...new Set(files)].map((f) => stamp(f)),
    );
    assert.ok((await readdir(dir)).includes("ann.video_vt.usearch"));
    assert.equal(chooseEngine(index.live, "auto", index.exactBelow, index.graphFrom), "graph");
    assert.equal(chooseEngine(index.live), n < EXACT_BELOW ? "exact" : "quantized");
    assert.equal(chooseEngine(GRAPH_FROM), "graph");

    const queries = clustered(100, dim, 40, 0.15, 5); // same centres (same seed), other members
    const reopened = await openEmbeddingIndex(dir, opts);
    let found = 0;
    for (let q = 0; q < 100; q++) {
      const query = queries.slice(q * dim, q * dim + dim);
      const exact = searchEmbeddingIndex(reopened, query, { k: 10, engine: "exact" });
      const approx = searchEmbeddingIndex(reopened, query, { k: 10 });
      assert.deepEqual(searchEmbeddingIndex(index, query, { k: 10 }), approx); // saved graph = built graph
      const truth = new Set(exact.map((h) => h.id));
      found += approx.filter((h) => truth.has(h.id)).length;
      // Rescored exactly: an approximate hit's score is the exact one of that row.
      const row = reopened.ids.indexOf(approx[0].id);
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += vectors[row * dim + j] * query[j]; // both already unit length
      assert.ok(Math.abs(dot - approx[0].score) < 1e-5, `score ${approx[0].score} vs ${dot}`);
    }
    assert.ok(found / 1000 >= 0.95, `recall@10 ${found / 1000}`);
  });

  it("resumes after an interruption: unlisted parts are ignored, a graph behind the rows catches up", async () => {
    const dir = join(root, "resume");
    const opts = { exactBelow: 50, graphFrom: 50 };
    const index = await createEmbeddingIndex(dir, MODEL, { video_vt: 8 }, opts);
    const files1 = Array.from({ length: 20 }, (_, i) => `a${i}.mp4`);
    const r1 = { ...rowsFor(files1, 4, 1), vectors: { video_vt: clustered(80, 8, 5, 0.2, 1) } };
    await appendRows(
      index,
      r1,
      files1.map((f) => stamp(f)),
    );
    const graph = join(dir, "ann.video_vt.usearch");
    const oldGraph = await readFile(graph);
    const oldEntry = index.manifest.ann.video_vt;
    const files2 = Array.from({ length: 10 }, (_, i) => `b${i}.mp4`);
    const r2 = { ...rowsFor(files2, 4, 2), vectors: { video_vt: clustered(40, 8, 5, 0.2, 2) } };
    await appendRows(
      index,
      r2,
      files2.map((f) => stamp(f)),
    );
    assert.equal(index.manifest.ann.video_vt?.rows, 120);

    // As if interrupted after the second part was listed but before its graph was saved, and while a third part
    // was being written (complete but unlisted, and a partial one).
    await writeFile(graph, oldGraph);
    const manifest = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    manifest.ann.video_vt = oldEntry;
    await writeFile(join(dir, "index.json"), JSON.stringify(manifest));
    await writeFile(join(dir, "part-00002.parquet"), await readFile(join(dir, "part-00001.parquet")));
    await writeFile(join(dir, "part-00002.parquet.partial"), "half a file");

    const resumed = await openEmbeddingIndex(dir, opts);
    assert.equal(resumed.ids.length, 120);
    assert.deepEqual(
      filesToEmbed(
        resumed,
        [...files1, ...files2, "c.mp4"].map((f) => stamp(f)),
      ),
      [stamp("c.mp4")],
    );
    // Every row, the second part's included, is found by its own vector through the graph.
    for (let r = 0; r < 120; r++) {
      const own = resumed.vectors.video_vt!.slice(r * 8, r * 8 + 8);
      const hits = searchEmbeddingIndex(resumed, own, { k: 3, engine: "graph" });
      assert.ok(
        hits.some((h) => h.id === resumed.ids[r]),
        `row ${r} (${resumed.ids[r]}) not found`,
      );
    }
    const r3 = rowsFor(["c.mp4"], 2, 3);
    delete r3.vectors.video_va;
    await appendRows(resumed, r3, [stamp("c.mp4")]);
    const last = await openEmbeddingIndex(dir, opts);
    assert.equal(last.ids.length, 122);
    assert.deepEqual(last.ids.slice(120), r3.ids);
    assert.equal(last.manifest.ann.video_vt?.rows, 122);
  });

  it("says what is wrong with a missing or corrupt folder, a wrong query width and k <= 0", async () => {
    const dir = join(root, "errors");
    await assert.rejects(
      openEmbeddingIndex(join(root, "nowhere")),
      /index\.json is missing: not an embedding index/,
    );
    const index = await createEmbeddingIndex(dir, MODEL, { video_vt: 8 }, { exactBelow: 4, graphFrom: 4 });
    const rows = rowsFor(["a.mp4"], 6, 1);
    delete rows.vectors.video_va;
    await appendRows(index, rows, [stamp("a.mp4")]);
    assert.throws(
      () => searchEmbeddingIndex(index, new Float32Array(256).fill(1), { k: 3 }),
      /query has 256 dimensions, the index's video_vt vectors 8: embed the query with the model/,
    );
    assert.throws(
      () => searchEmbeddingIndex(index, new Float32Array(8).fill(1), { k: 0 }),
      /k must be a positive/,
    );
    assert.throws(
      () => searchEmbeddingIndex(index, new Float32Array(8).fill(1), { k: 1, column: "audio_va" }),
      /has no audio_va vectors/,
    );
    await assert.rejects(
      createEmbeddingIndex(dir, { id: "other", preset: "tiny" }, { video_vt: 8 }),
      /holds embeddings of model run-1\/step-100 \(tiny\), not other \(tiny\)/,
    );
    await assert.rejects(
      createEmbeddingIndex(dir, MODEL, { video_vt: 16 }),
      /holds vectors \{"video_vt":8\}/,
    );
    const narrow = { ...rowsFor(["b.mp4"], 1, 1), vectors: { video_vt: new Float32Array(5).fill(1) } };
    await assert.rejects(appendRows(index, narrow, [stamp("b.mp4")]), /video_vt needs 1 x 8 floats, got 5/);

    // A corrupt graph is refused by its checksum (usearch itself would crash the process on it).
    const graph = join(dir, "ann.video_vt.usearch");
    const bytes = await readFile(graph);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(graph, bytes);
    await assert.rejects(openEmbeddingIndex(dir), /ann\.video_vt\.usearch does not match its checksum/);
    // A missing graph is a cache: rebuilt on demand, same answers as exact on 6 rows.
    await rm(graph);
    const noGraph = await openEmbeddingIndex(dir, { exactBelow: 4, graphFrom: 4 });
    const q = new Float32Array(8).fill(1);
    assert.deepEqual(
      searchEmbeddingIndex(noGraph, q, { k: 6 })
        .map((h) => h.id)
        .sort(),
      searchEmbeddingIndex(noGraph, q, { k: 6, engine: "exact" })
        .map((h) => h.id)
        .sort(),
    );

    const part = join(dir, "part-00000.parquet");
    await writeFile(part, "not parquet at all");
    await assert.rejects(openEmbeddingIndex(dir), /part-00000\.parquet is not a readable Parquet file/);
    await rm(part);
    await assert.rejects(openEmbeddingIndex(dir), /part-00000\.parquet is listed in index\.json but missing/);
    await writeFile(join(dir, "index.json"), "{ truncated");
    await assert.rejects(openEmbeddingIndex(dir), /index\.json is not valid JSON/);
  });
});
