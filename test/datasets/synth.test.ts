import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type SynthOptions, type SynthTruth, synthesizeDataset } from "../../datasets/synth.js";
import { CONCEPTS } from "../../datasets/synth-concepts.js";
import { probe } from "../../media/probe.js";

let dir: string;
const small = {
  width: 96,
  height: 64,
  fps: 10,
  minSeconds: 6,
  maxSeconds: 12,
} satisfies Partial<SynthOptions>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-synth-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function textFiles(root: string): Promise<Record<string, string>> {
  const names = (await readdir(root)).filter((n) => /\.(csv|json)$/.test(n)).sort();
  return Object.fromEntries(
    await Promise.all(names.map(async (n) => [n, await readFile(join(root, n), "utf8")])),
  );
}

describe("synth howto100m", () => {
  let truth: SynthTruth;
  before(async () => {
    truth = await synthesizeDataset({
      kind: "howto100m",
      out: join(dir, "h1"),
      videos: 3,
      seed: 7,
      ...small,
    });
    await synthesizeDataset({ kind: "howto100m", out: join(dir, "h2"), videos: 3, seed: 7, ...small });
    await synthesizeDataset({ kind: "howto100m", out: join(dir, "h3"), videos: 3, seed: 8, ...small });
  });

  it("is byte-identical for the same seed and differs for another", async () => {
    const a = await textFiles(join(dir, "h1"));
    assert.deepEqual(Object.keys(a), ["HowTo100M_v1.csv", "caption.json", "synth.json"]);
    assert.deepEqual(a, await textFiles(join(dir, "h2")));
    assert.notEqual(a["caption.json"], (await textFiles(join(dir, "h3")))["caption.json"]);
  });

  it("writes the published CSV and caption.json layout", async () => {
    const csv = (await readFile(join(dir, "h1", "HowTo100M_v1.csv"), "utf8")).trim().split("\n");
    assert.equal(csv[0], "video_id,category_1,category_2,rank,task_id");
    assert.equal(csv.length, 4);
    const captions = JSON.parse(await readFile(join(dir, "h1", "caption.json"), "utf8"));
    for (const line of csv.slice(1)) {
      const id = line.split(",")[0];
      assert.match(id, /^[A-Za-z0-9_-]{11}$/);
      const c = captions[id];
      assert.ok(c, `captions for ${id}`);
      assert.equal(c.start.length, c.end.length);
      assert.equal(c.start.length, c.text.length);
      assert.ok(c.start.length >= 2);
    }
  });

  it("places every caption inside its video, overlapping its neighbour like ASR lines", async () => {
    const captions = JSON.parse(await readFile(join(dir, "h1", "caption.json"), "utf8"));
    let overlaps = 0;
    for (const video of truth.videos) {
      const info = await probe(join(dir, "h1", video.file!));
      assert.ok(
        Math.abs(info.duration - video.duration) < 0.2,
        `${video.id}: ${info.duration} vs ${video.duration}`,
      );
      const c = captions[video.id];
      for (let i = 0; i < c.start.length; i++) {
        assert.ok(
          c.start[i] >= 0 && c.start[i] < c.end[i] && c.end[i] <= info.duration,
          `caption ${i} of ${video.id}`,
        );
        if (i > 0 && c.start[i] < c.end[i - 1]) overlaps++;
      }
    }
    assert.ok(overlaps > 0);
  });

  it("encodes H.264 + AAC at the asked size and rate", async () => {
    const info = await probe(join(dir, "h1", truth.videos[0].file!));
    assert.equal(info.videoCodec, "h264");
    assert.equal(info.audioCodec, "aac");
    assert.equal(info.width, 96);
    assert.equal(info.height, 64);
    assert.equal(info.avgFrameRate, 10);
    assert.equal(info.audioSampleRate, 48000);
  });

  it("names the concept on screen in most captions", async () => {
    const captions = JSON.parse(await readFile(join(dir, "h1", "caption.json"), "utf8"));
    let named = 0;
    let total = 0;
    for (const video of truth.videos) {
      const c = captions[video.id];
      for (let i = 0; i < c.text.length; i++) {
        const mid = (c.start[i] + c.end[i]) / 2;
        const seg = video.segments.find((s) => mid >= s.start && mid < s.end);
        if (!seg || seg.concepts.length === 0) continue;
        total++;
        const words = c.text[i].split(" ");
        if (CONCEPTS[seg.concepts[0]].words.some((w) => words.includes(w))) named++;
      }
    }
    assert.ok(total > 0 && named / total > 0.6, `${named}/${total}`);
  });
});

describe("synth audioset", () => {
  let truth: SynthTruth;
  before(async () => {
    const opts = { kind: "audioset", videos: 10, seed: 3, ...small, missingShare: 0.2 } as const;
    truth = await synthesizeDataset({ ...opts, out: join(dir, "a1") });
    await synthesizeDataset({ ...opts, out: join(dir, "a2") });
  });

  it("is byte-identical for the same seed", async () => {
    const a = await textFiles(join(dir, "a1"));
    assert.deepEqual(Object.keys(a), [
      "balanced_train_segments.csv",
      "class_labels_indices.csv",
      "eval_segments.csv",
      "ontology.json",
      "synth.json",
    ]);
    assert.deepEqual(a, await textFiles(join(dir, "a2")));
  });

  it("writes segment CSVs with three # lines and comma-space rows with quoted labels", async () => {
    let rows = 0;
    let multiLabel = 0;
    for (const split of ["balanced_train", "eval"]) {
      const lines = (await readFile(join(dir, "a1", `${split}_segments.csv`), "utf8")).trim().split("\n");
      assert.ok(lines.slice(0, 3).every((l) => l.startsWith("#")));
      assert.equal(lines[2], "# YTID, start_seconds, end_seconds, positive_labels");
      for (const row of lines.slice(3)) {
        const m = row.match(/^([A-Za-z0-9_-]{11}), (\d+\.000), (\d+\.000), "(\/m\/\w+(?:,\/m\/\w+)*)"$/);
        assert.ok(m, `row '${row}'`);
        assert.equal(Number(m[3]) - Number(m[2]), 10);
        if (m[4].includes(",")) multiLabel++;
        rows++;
      }
    }
    assert.equal(rows, 10);
    assert.ok(multiLabel > 0, "some segments carry several labels");
  });

  it("writes the class index and ontology for the labels it uses", async () => {
    const index = (await readFile(join(dir, "a1", "class_labels_indices.csv"), "utf8")).trim().split("\n");
    assert.equal(index[0], "index,mid,display_name");
    assert.equal(index.length, CONCEPTS.length + 1);
    assert.match(index[1], /^0,\/m\/\w+,"[^"]+, [^"]+"$/, "display names with commas are quoted");
    const ontology = JSON.parse(await readFile(join(dir, "a1", "ontology.json"), "utf8"));
    assert.equal(ontology.length, CONCEPTS.length);
    for (const key of [
      "id",
      "name",
      "description",
      "citation_uri",
      "positive_examples",
      "child_ids",
      "restrictions",
    ]) {
      assert.ok(key in ontology[0], key);
    }
  });

  it("writes 10 s clips named YTID_start, some at 44.1 kHz, and leaves out the missing share", async () => {
    const files = (await readdir(join(dir, "a1", "clips"))).sort();
    const expected = truth.videos.filter((v) => v.file).map((v) => v.file!.replace("clips/", ""));
    assert.deepEqual(files, expected.sort());
    assert.ok(files.length < 10, "some rows have no clip, as with dead YouTube links");
    const rates = new Set<number>();
    for (const f of files) {
      assert.match(f, /^[A-Za-z0-9_-]{11}_\d+\.mp4$/);
      const info = await probe(join(dir, "a1", "clips", f));
      assert.ok(Math.abs(info.duration - 10) < 0.15, `${f}: ${info.duration}`);
      rates.add(info.audioSampleRate);
    }
    assert.deepEqual([...rates].sort(), [44100, 48000]);
  });
});

describe("synth options", () => {
  it("refuses impossible sizes with a clear message", async () => {
    await assert.rejects(
      synthesizeDataset({ kind: "howto100m", out: join(dir, "bad"), videos: 1, seed: 0, width: 33 }),
      /width and height must be even/,
    );
    await assert.rejects(
      synthesizeDataset({ kind: "howto100m", out: join(dir, "bad"), videos: 0, seed: 0 }),
      /videos must be a positive integer/,
    );
  });
});
