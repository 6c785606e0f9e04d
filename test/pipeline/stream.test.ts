import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClipRef, Example } from "../../pipeline/records.js";
import { SkipLog } from "../../pipeline/skips.js";
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

/** Our child processes and theirs: decodes run under the spawner process on Linux (pipeline/ffmpeg.ts). */
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

  it("is deterministic: concurrency 1 and 4 give the same examples, in order", async () => {
    const refs = refsOver(videos, 6);
    const one = await collect(
      pretrainingExamples(refs, { seed: 5, decode, augment, concurrency: 1, buffer: 0 }),
    );
    const four = await collect(
      pretrainingExamples(refs, { seed: 5, decode, augment, concurrency: 4, buffer: 2 }),
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
      pretrainingExamples(refs.slice(0, 1), { seed: 6, decode, augment, concurrency: 1 }),
    );
    assert.notDeepEqual(other[0].video, one[0].video);
  });

  it("skips corrupt, truncated and missing files, counts them with reasons and goes on", async () => {
    const garbage = await makeGarbage(`${dir}/garbage.mp4`);
    const truncated = await truncateMedia(videos[0], `${dir}/truncated.mp4`, 0.3);
    const paths = [videos[0], garbage, videos[1], truncated, `${dir}/missing.mp4`, videos[2]];
    const skips = new SkipLog();
    const out = await collect(
      pretrainingExamples(refsOver(paths, 6), { seed: 1, decode, augment, concurrency: 2, buffer: 1, skips }),
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
    })) {
      batches.push(b);
    }
    assert.equal(batches.length, 2); // the short last batch is dropped
    assert.deepEqual(batches[0].videoShape, [2, 8, 32, 32, 3]);
    assert.equal(batches[0].audio.length, 2 * 38_400);
    assert.deepEqual(batches[1].ids, ["v2", "v3"]);
  });

  it("breaking out kills in-flight ffmpeg processes", async () => {
    const fifo = `${dir}/never-written.fifo`;
    execFileSync("mkfifo", [fifo]); // ffmpeg blocks opening it: a decode that hangs
    const refs = refsOver([videos[0], fifo, fifo, fifo], 4);
    let got = 0;
    for await (const _ of pretrainingExamples(refs, {
      seed: 0,
      decode,
      augment,
      concurrency: 4,
      buffer: 0,
    })) {
      got += 1;
      const running = (await descendants()).filter((c) => c.name.includes("ffmpeg"));
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
          decode: { ...decode, timeoutMs: 300 },
          augment,
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
