import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { SkipLog } from "../../core/skips.js";
import { classFolders, esc50, hmdb51, ucf101 } from "../../datasets/classification.js";
import { CONCEPTS } from "../../datasets/synth-concepts.js";
import {
  type DownstreamKind,
  type DownstreamTruth,
  downstreamLayout,
  synthesizeDownstream,
  synthWnid,
  ucfTestsGroup,
} from "../../datasets/synth-downstream.js";
import {
  meanColour,
  renderSceneBackground,
  renderSceneFrame,
  type Scene,
} from "../../datasets/synth-scenes.js";
import { probe } from "../../media/probe.js";
import { collect } from "./fixtures.js";

let scratch: string;
let made = 0;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vatt-synth-downstream-"));
});
after(() => rm(scratch, { recursive: true, force: true }));

/** A fresh folder for one dataset. */
const freshDir = (): string => join(scratch, `d${made++}`);

const tiny = { width: 48, height: 32, fps: 8 } as const;

async function written(
  root: string,
  kind: DownstreamKind,
  videos: number,
  seed: number,
): Promise<DownstreamTruth> {
  return synthesizeDownstream({ kind, out: root, videos, seed, ...tiny });
}

/** Every text file of the layout is on disk, byte for byte. */
async function assertTextsWritten(
  root: string,
  kind: DownstreamKind,
  videos: number,
  seed: number,
): Promise<void> {
  const { texts } = downstreamLayout(kind, seed, videos);
  assert.ok(Object.keys(texts).length > 0);
  for (const [rel, text] of Object.entries(texts))
    assert.equal(await readFile(join(root, rel), "utf8"), text, rel);
}

describe("synth ucf101", () => {
  let root: string;
  let truth: DownstreamTruth;
  before(async () => {
    root = freshDir();
    truth = await written(root, "ucf101", 24, 3);
  });

  it("writes classInd and three split pairs that obey the group rule, read back by the UCF101 reader", async () => {
    await assertTextsWritten(root, "ucf101", 24, 3);
    const classInd = await readFile(join(root, "classInd.txt"), "utf8");
    assert.match(classInd, /^1 TomatoWhisk\r\n2 WhiskHammer\r\n/);
    const byFile = new Map(truth.items.map((it) => [it.file, it]));
    for (let k = 1; k <= 3; k++) {
      const skips = new SkipLog();
      const read = async (list: string) => {
        const source = ucf101({ videos: root, splitFile: join(root, `${list}0${k}.txt`), skips });
        assert.deepEqual(
          await source.classes(),
          truth.classes.map((c) => c.name),
        );
        return collect(source.refs(0));
      };
      const train = await read("trainlist");
      const test = await read("testlist");
      assert.deepEqual(skips.byReason(), {});
      assert.equal(train.length + test.length, 24, `split ${k}`);
      assert.ok(test.length >= 8, `split ${k} tests every class: ${test.length}`);
      const groupOf = (id: string) => Number(/_g(\d\d)_c\d\d\.avi$/.exec(id)![1]);
      for (const r of test)
        assert.ok(groupOf(r.id) > 7 * (k - 1) && groupOf(r.id) <= 7 * k, `${r.id} in test ${k}`);
      for (const r of train) assert.ok(!ucfTestsGroup(k, groupOf(r.id)), `${r.id} in train ${k}`);
      for (const r of [...train, ...test]) {
        const item = byFile.get(r.id)!;
        assert.deepEqual(r.labels, [item.label]);
        assert.equal(r.id.split("/")[0], truth.classes[item.label!].name);
        assert.match(r.id, /^(\w+)\/v_\1_g\d\d_c\d\d\.avi$/);
      }
    }
  });

  it("encodes UCF101's codecs: MPEG-4 part 2 tagged XVID with MP3 audio in AVI", async () => {
    const info = await probe(join(root, truth.items[0].file));
    assert.equal(info.formatName, "avi");
    assert.equal(info.videoCodec, "mpeg4");
    assert.equal(info.audioCodec, "mp3");
    assert.equal(info.width, 48);
    assert.equal(info.height, 32);
    assert.ok(Math.abs(info.duration - truth.items[0].duration!) < 0.2, `${info.duration}`);
  });
});

describe("synth hmdb51", () => {
  it("writes per-class split files read back by the HMDB51 reader; clips of a source stay together", async () => {
    const root = freshDir();
    const truth = await written(root, "hmdb51", 24, 4);
    await assertTextsWritten(root, "hmdb51", 24, 4);
    const names = truth.classes.map((c) => c.name);
    assert.ok(names.every((n) => /^[a-z]+_[a-z]+$/.test(n)));
    for (const split of [1, 2, 3] as const) {
      const skips = new SkipLog();
      const opts = {
        videos: join(root, "videos"),
        splits: join(root, "testTrainMulti_7030_splits"),
        split,
        skips,
      };
      const sets = { train: 1, test: 2 } as const;
      const seen = new Map<string, number>();
      for (const subset of ["train", "test"] as const) {
        const source = hmdb51({ ...opts, subset });
        assert.deepEqual(await source.classes(), names);
        for (const r of await collect(source.refs(0))) {
          const item = truth.items.find((it) => it.file === `videos/${r.id}`)!;
          assert.deepEqual(r.labels, [item.label]);
          assert.equal(item.splits![split - 1], sets[subset]);
          seen.set(r.id, sets[subset]);
        }
      }
      assert.deepEqual(skips.byReason(), {});
      const expected = truth.items.filter((it) => it.splits![split - 1] !== 0).length;
      assert.equal(seen.size, expected);
      // Both clips of one source video share a subset (as HMDB51's splits keep them together).
      const bySource = new Map<string, Set<number>>();
      for (const [id, flag] of seen) {
        const key = id.replace(/_\d\.avi$/, "");
        bySource.set(key, (bySource.get(key) ?? new Set()).add(flag));
      }
      assert.ok([...bySource.values()].every((flags) => flags.size === 1));
      assert.ok([...seen.values()].includes(1) && [...seen.values()].includes(2));
    }
  });
});

describe("synth esc50", () => {
  it("writes meta/esc50.csv and 5 s 44.1 kHz mono WAVs, read back by the ESC-50 reader", async () => {
    const root = freshDir();
    const truth = await written(root, "esc50", 10, 5);
    await assertTextsWritten(root, "esc50", 10, 5);
    const csv = (await readFile(join(root, "meta", "esc50.csv"), "utf8")).trim().split("\n");
    assert.equal(csv[0], "filename,fold,target,category,esc10,src_file,take");
    const names = csv.slice(1).map((l) => l.split(",")[0]);
    assert.deepEqual(names, [...names].sort());
    const skips = new SkipLog();
    const all = esc50({ root, skips });
    assert.deepEqual(
      await all.classes(),
      truth.classes.map((c) => c.name),
    );
    const refs = await collect(all.refs(0));
    assert.equal(refs.length, 10);
    for (const r of refs) {
      const m = /^(\d)-(\d+)-A-(\d+)\.wav$/.exec(r.id)!;
      assert.ok(m, r.id);
      assert.deepEqual(r.labels, [Number(m[3])]);
      assert.equal(r.duration, 5);
    }
    const fold2 = await collect(esc50({ root, skips, folds: [2] }).refs(0));
    assert.deepEqual(fold2.map((r) => r.labels[0]).sort(), [0, 1]);
    assert.deepEqual(skips.byReason(), {});
    const info = await probe(refs[0].path);
    assert.equal(info.audioCodec, "pcm_s16le");
    assert.equal(info.audioSampleRate, 44100);
    assert.equal(info.audioChannels, 1);
    assert.ok(Math.abs(info.duration - 5) < 1e-3, `${info.duration}`);
    assert.equal(info.hasVideo, false);
  });
});

describe("synth images", () => {
  it("writes ImageNet's train/val wnid folders of JPEGs, read by the class-folder reader", async () => {
    const root = freshDir();
    const truth = await written(root, "images", 40, 6);
    await assertTextsWritten(root, "images", 40, 6);
    const skips = new SkipLog();
    const train = await collect(
      classFolders({ root: join(root, "train"), extensions: ["JPEG"], skips }).refs(0),
    );
    const val = await collect(classFolders({ root: join(root, "val"), extensions: ["JPEG"], skips }).refs(0));
    assert.equal(train.length, 32);
    assert.equal(val.length, 8);
    for (const r of [...train, ...val]) {
      const wnid = r.id.split("/")[0];
      assert.equal(wnid, synthWnid(r.labels[0]));
      const item = truth.items.find((it) => it.file.endsWith(r.id))!;
      assert.equal(item.label, r.labels[0]);
    }
    assert.ok(val.every((r) => /\/ILSVRC2012_val_\d{8}\.JPEG$/.test(r.id)));
    const meta = await sharp(train[0].path).metadata();
    assert.equal(meta.format, "jpeg");
    assert.equal(meta.width, 48);
  });
});

describe("synth downstream text files", () => {
  it("are the same bytes for the same seed; the random ones differ for another seed", () => {
    for (const kind of ["ucf101", "hmdb51", "esc50", "msrvtt", "youcook2", "images"] as const) {
      const a = downstreamLayout(kind, 11, 40).texts;
      assert.deepEqual(downstreamLayout(kind, 11, 40).texts, a, kind);
      if (kind === "hmdb51" || kind === "esc50" || kind === "msrvtt" || kind === "youcook2") {
        assert.notDeepEqual(downstreamLayout(kind, 12, 40).texts, a, kind);
      }
    }
  });

  it("name every class by two concepts, each concept in exactly two classes", () => {
    for (const kind of ["ucf101", "hmdb51", "esc50", "images"] as const) {
      const { classes } = downstreamLayout(kind, 0, 8);
      assert.equal(classes.length, 8);
      const uses = new Array(CONCEPTS.length).fill(0);
      for (const c of classes) for (const k of c.concepts) uses[k]++;
      assert.deepEqual(uses, new Array(CONCEPTS.length).fill(2), kind);
      assert.equal(new Set(classes.map((c) => [...c.concepts].sort().join())).size, 8);
    }
  });
});

/** Accuracy of a nearest class-mean classifier trained on `train` and scored on `test`. */
function nearestMeanAccuracy(
  train: { x: number[]; y: number }[],
  test: { x: number[]; y: number }[],
  classes: number,
): number {
  const dims = train[0].x.length;
  const means = Array.from({ length: classes }, () => new Array<number>(dims).fill(0));
  const counts = new Array<number>(classes).fill(0);
  for (const { x, y } of train) {
    counts[y]++;
    x.forEach((v, d) => {
      means[y][d] += v;
    });
  }
  means.forEach((m, c) => {
    for (let d = 0; d < dims; d++) m[d] /= counts[c];
  });
  let hits = 0;
  for (const { x, y } of test) {
    let best = -1;
    let bestDistance = Number.POSITIVE_INFINITY;
    means.forEach((m, c) => {
      const distance = m.reduce((s, v, d) => s + (v - x[d]) ** 2, 0);
      if (distance < bestDistance) [best, bestDistance] = [c, distance];
    });
    if (best === y) hits++;
  }
  return hits / test.length;
}

describe("synth downstream classes", () => {
  /** Mean RGB of the middle frame of every clip of the default UCF101 set, split 1 as train/test. */
  function features(clean: boolean) {
    const { items, jobs } = downstreamLayout("ucf101", 0, 168);
    const [w, h] = [80, 60];
    const frame = new Uint8Array(w * h * 3);
    return items.map((item, i) => {
      const job = jobs[i];
      assert.equal(job.type, "video");
      let scene: Scene = job.scene;
      if (clean) scene = { ...scene, background: [0, 0, 0], gradient: [0, 0, 0], texture: 0, clutter: [] };
      renderSceneFrame(frame, renderSceneBackground(scene, w, h), w, h, scene, item.duration! / 2);
      return {
        x: meanColour(frame) as number[],
        y: item.label!,
        test: ucfTestsGroup(1, item.group!),
      };
    });
  }

  it("are not separable by mean colour (nearest class mean on mean RGB), though they would be without nuisance", () => {
    const noisy = features(false);
    const clean = features(true);
    const accuracy = (f: typeof noisy) =>
      nearestMeanAccuracy(
        f.filter((e) => !e.test),
        f.filter((e) => e.test),
        8,
      );
    const withNuisance = accuracy(noisy);
    const withoutNuisance = accuracy(clean);
    console.log(
      `nearest class mean on mean RGB, UCF101 split 1: ${(100 * withNuisance).toFixed(1)} % ` +
        `(chance 12.5 %); same objects on black without clutter: ${(100 * withoutNuisance).toFixed(1)} %`,
    );
    assert.ok(withNuisance < 0.3, `${withNuisance}`);
    assert.ok(withoutNuisance > 0.4, `the measurement can see colour: ${withoutNuisance}`);
  });
});
