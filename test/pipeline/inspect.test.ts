import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import type { ClipRef } from "../../core/records.js";
import { inspectRefs } from "../../pipeline/inspect.js";
import { makeGarbage, makeMedia, makeTempDir, removeDir } from "../media.js";

describe("inspect contact sheet", () => {
  let dir: string;
  let refs: ClipRef[];
  before(async () => {
    dir = await makeTempDir();
    const video = await makeMedia(dir, "a", { seconds: 4 });
    const bad = await makeGarbage(`${dir}/bad.mp4`);
    refs = [bad, video, video].map((path, index) => ({
      source: "test",
      id: `v${index}`,
      path,
      start: 0,
      end: 4,
      index,
      epoch: 0,
      captions: [{ start: 0, end: 2, text: "knead <the> dough & rest" }],
      labels: [],
    }));
  });
  after(() => removeDir(dir));

  it("draws one row per example (frames, waveform, text) and skips bad files", async () => {
    const png = await inspectRefs(refs, {
      examples: 2,
      framesShown: 4,
      seed: 0,
      decode: { shortSide: 40, frames: 8 },
      augment: { outHeight: 32, outWidth: 32 },
    });
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, "png");
    assert.equal(meta.width, Math.max(4 * 32 + 3 * 2, 480) + 16);
    assert.equal(meta.height, 8 + 2 * (36 + 32 + 4 + 48 + 8));
  });
});
