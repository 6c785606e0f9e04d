import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClipRef, Example } from "../../core/records.js";
import { SkipLog } from "../../core/skips.js";
import { evaluationViews, pretrainingBatches, pretrainingExamples } from "../../pipeline/stream.js";
import {
  childProcesses,
  makeGarbage,
  makeHangingFfmpeg,
  makeMedia,
  makeTempDir,
  removeDir,
  truncateMedia,
} from "../media.js";

const decode = { frames: 8, shortSide: 48, timeoutMs: 20_000 };
const augment = { outHeight: 32, outWidth: 32 };

function refsOver(paths: string[], count: number): ClipRef[] {
  return Array.from({ length: count }, (_, index) => ({
    source: "test",
    id: `v${index}`,
    path: paths[index % paths.length],
    start: 0,
    end: 4,
    index,
    epoch: 0,
    captions: [],
    labels: [],
  }));
}

async function collect(it: AsyncIterable<Example>): Promise<Example[]> {
  const out: Example[] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** Our child processes and theirs: decodes may run under the spawner process on Linux (media/spawner.ts). */
async function descendants(): Promise<{ pid: number; name: string; state: string }[]> {
  const found = [];
  for (let level = await childProcesses(); level.length > 0; ) {
    found.push(...level);
    level = (await Promise.all(level.map((c) => childProcesses(c.pid)))).flat();
  }
  return found;
}

async function noFfmpegChildren(): Promise<string[]> {
  const isDecoder = (c: { name: string }) => c.name.includes("ffmpeg") || c.name === "sleep";
  for (let i = 0; i < 40; i++) {
    const left = (await descendants()).filter(isDecoder);
    if (left.length === 0) return [];
    await sleep(50);
  }
  return (await descendants()).filter(isDecoder).map((c) => `${c.pid} ${c.name} ${c.state}`);
}

describe("pretraining stream on real media", () => {
  let dir: string;
  let videos: string[];
  before(async () => {
    dir = await makeTempDir();
    videos = await Promise.all([
      makeMedia(dir, "a", { seconds: 4 }),
      makeMedia(dir, "b", { seconds: 3, width: 120, height: 160 }),
      makeMedia(dir, "c", { seconds: 4, audioRate: false }),
    ]);
  });
  after(() => removeDir(dir));

  for (const geometryIn of ["ffmpeg", "arrays"] as const) {
    describe(`crop, resize and flip in ${geometryIn}`, () => {
      it("is deterministic: concurrency 1 and 4 give the same examples, in order", async () => {
        const refs = refsOver(videos, 6);
        const one = await collect(
          pretrainingExamples(refs, { seed: 5, decode, augment, geometryIn, concurrency: 1, buffer: 0 }),
        );
        const four = await collect(
          pretrainingExamples(refs, { seed: 5, decode, augment, geometryIn, concurrency: 4, buffer: 2 }),
        );
        assert.equal(one.length, 6);
        assert.deepEqual(
          four.map((e) => e.index),
          [0, 1, 2, 3, 4, 5],
        );
        for (let i = 0; i < 6; i++) {
          assert.deepEqual(four[i].video, one[i].video, `video of sample ${i}`);
          assert.deepEqual(four[i].audio, one[i].audio, `audio of sample ${i}`);
        }
        assert.deepEqual(one[0].videoShape, [8, 32, 32, 3]);
        assert.ok(one.every((e) => e.video.every((v) => v >= -1 && v <= 1)));
        assert.equal(one[2].audioMask, 0);
        const other = await collect(
          pretrainingExamples(refs.slice(0, 1), { seed: 6, decode, augment, geometryIn, concurrency: 1 }),
        );
        assert.notDeepEqual(other[0].video, one[0].video);
      });

      it("skips corrupt, truncated and missing files, counts them with reasons and goes on", async () => {
        const garbage = await makeGarbage(`${dir}/garbage.mp4`);
        const truncated = await truncateMedia(videos[0], `${dir}/truncated.mp4`, 0.3);
        const paths = [videos[0], garbage, videos[1], truncated, `${dir}/missing.mp4`, videos[2]];
        const skips = new SkipLog();
        const out = await collect(
          pretrainingExamples(refsOver(paths, 6), {
            seed: 1,
            decode,
            augment,
            geometryIn,
            concurrency: 2,
            buffer: 1,
            skips,
          }),
        );
        assert.deepEqual(
          out.map((e) => e.index),
          [0, 2, 5],
        );
        assert.equal(skips.count, 3);
        assert.ok(Object.keys(skips.byReason()).every((k) => k.startsWith("decode:")));
        for (const event of skips.lastEvents()) assert.match(event.message, /\.mp4/);
      });

      it("stacks examples into batches", async () => {
        const batches = [];
        for await (const b of pretrainingBatches(refsOver(videos, 5), {
          seed: 2,
          batchSize: 2,
          decode,
          augment,
          geometryIn,
        })) {
          batches.push(b);
        }
        assert.equal(batches.length, 2); // the short last batch is dropped
        assert.deepEqual(batches[0].videoShape, [2, 8, 32, 32, 3]);
        assert.equal(batches[0].audio.length, 2 * 38_400);
        assert.deepEqual(batches[1].ids, ["v2", "v3"]);
      });

      it("breaking out kills in-flight ffmpeg processes", async () => {
        const fifo = `${dir}/never-written-${geometryIn}.fifo`;
        execFileSync("mkfifo", [fifo]); // ffmpeg blocks opening it: a decode that hangs
        const refs = refsOver([videos[0], fifo, fifo, fifo], 4);
        let got = 0;
        for await (const _ of pretrainingExamples(refs, {
          seed: 0,
          decode: { ...decode, decoder: "process" }, // what is checked here is the child processes
          augment,
          geometryIn,
          concurrency: 4,
          buffer: 0,
        })) {
          got += 1;
          // Hanging on the fifo: ffmpeg, or ffprobe when the crop runs in ffmpeg (it needs the frame size first).
          const running = (await descendants()).filter((c) => /ffmpeg|ffprobe/.test(c.name));
          assert.ok(running.length >= 1, "expected hanging decodes in flight");
          break;
        }
        assert.equal(got, 1);
        assert.deepEqual(await noFfmpegChildren(), []);
      });

      it("kills a decode that hangs at its time limit, counts it, and goes on", async () => {
        const hanging = await makeHangingFfmpeg(dir);
        const saved = process.env.FFMPEG_PATH;
        process.env.FFMPEG_PATH = hanging;
        try {
          const skips = new SkipLog();
          const started = Date.now();
          const out = await collect(
            pretrainingExamples(refsOver(videos, 2), {
              seed: 0,
              decode: { ...decode, timeoutMs: 300, decoder: "process" }, // FFMPEG_PATH is a hanging fake
              augment,
              geometryIn,
              skips,
              concurrency: 2,
            }),
          );
          assert.equal(out.length, 0);
          assert.deepEqual(skips.byReason(), { "decode:timeout": 2 });
          assert.match(skips.lastEvents()[0].message, /timed out after 300 ms/);
          assert.ok(Date.now() - started < 5000);
        } finally {
          if (saved === undefined) delete process.env.FFMPEG_PATH;
          else process.env.FFMPEG_PATH = saved;
        }
        assert.deepEqual(await noFfmpegChildren(), []);
      });
    });
  }

  it("crops the same box and flips the same way in ffmpeg as in typed arrays (resampling aside)", async () => {
    // A landscape video and one whose rotation tag makes it portrait on display (the probe must see it turned).
    const rotated = await makeMedia(dir, "rotated", { seconds: 4, rotate: 90 });
    const refs = refsOver([videos[0], rotated], 4);
    const size = { frames: 2, shortSide: 96, timeoutMs: 20_000 };
    const out = { outHeight: 64, outWidth: 64, colour: false as const, audioNoise: 0 };
    const run = (geometryIn: "ffmpeg" | "arrays") =>
      collect(pretrainingExamples(refs, { seed: 9, decode: size, augment: out, geometryIn, concurrency: 2 }));
    const [inFfmpeg, inArrays] = await Promise.all([run("ffmpeg"), run("arrays")]);
    const meanDiff = (a: Float32Array, b: Float32Array) =>
      a.reduce((s, v, j) => s + Math.abs(v - b[j]), 0) / a.length;
    const mirrored = (v: Float32Array) => {
      const m = new Float32Array(v.length);
      for (let row = 0; row < v.length / (64 * 3); row++) {
        for (let x = 0; x < 64; x++)
          m.set(v.subarray((row * 64 + 63 - x) * 3, (row * 64 + 64 - x) * 3), (row * 64 + x) * 3);
      }
      return m;
    };
    assert.equal(inFfmpeg.length, 4);
    for (let i = 0; i < 4; i++) {
      // swscale's bilinear (and its chroma handling) is not tf.image.resize's, so the pictures are close, not equal;
      // the same crop mirrored, or another sample's crop, is much further away.
      const same = meanDiff(inFfmpeg[i].video, inArrays[i].video);
      const flipped = meanDiff(inFfmpeg[i].video, mirrored(inArrays[i].video));
      const other = meanDiff(inFfmpeg[i].video, inArrays[(i + 1) % 4].video);
      assert.ok(
        same < 0.35 * Math.min(flipped, other),
        `sample ${i}: ${same} vs mirrored ${flipped}, other ${other}`,
      );
      assert.deepEqual(inFfmpeg[i].audio, inArrays[i].audio);
    }
  });

  it("evaluation views: 4 windows x 3 crops per video", async () => {
    const views = [];
    for await (const v of evaluationViews(refsOver(videos, 2), {
      windows: 4,
      spatial: 3,
      decode,
      views: augment,
    })) {
      views.push(v);
    }
    assert.equal(views.length, 2);
    assert.equal(views[0].views.length, 12);
    assert.deepEqual(views[0].views[0].videoShape, [8, 32, 32, 3]);
    // Left, centre and right crops of a landscape frame differ.
    assert.notDeepEqual(views[0].views[0].video, views[0].views[2].video);
  });
});
