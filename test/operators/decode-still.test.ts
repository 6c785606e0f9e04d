import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import type { ClipRef } from "../../core/records.js";
import { MediaError } from "../../media/process.js";
import { decodeClip } from "../../operators/decode.js";
import { makeTempDir, removeDir } from "../media.js";

const ref = (path: string): ClipRef => ({
  source: "images",
  id: "p",
  path,
  start: 0,
  end: 0.8,
  index: 0,
  epoch: 0,
  captions: [],
  labels: [2],
});

describe("still pictures as clips", () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir("vatt-still-");
  });
  after(() => removeDir(dir));

  it("repeats the picture, scaled to the short side, as every frame of the clip, with no sound", async () => {
    // 80x40: left half red, right half blue.
    const pixels = Buffer.alloc(80 * 40 * 3);
    for (let y = 0; y < 40; y++)
      for (let x = 0; x < 80; x++) pixels.set(x < 40 ? [255, 0, 0] : [0, 0, 255], (y * 80 + x) * 3);
    const file = join(dir, "p.JPEG");
    await sharp(pixels, { raw: { width: 80, height: 40, channels: 3 } })
      .jpeg({ quality: 95 })
      .toFile(file);
    const clip = await decodeClip(ref(file), { frames: 4, fps: 10, shortSide: 20, sampleRate: 8000 });
    assert.equal(clip.numFrames, 4);
    assert.deepEqual([clip.width, clip.height], [40, 20]);
    const frame = 40 * 20 * 3;
    for (let f = 1; f < 4; f++)
      assert.deepEqual(clip.frames.subarray(f * frame, (f + 1) * frame), clip.frames.subarray(0, frame));
    const at = (x: number, y: number) =>
      Array.from(clip.frames.subarray((y * 40 + x) * 3, (y * 40 + x) * 3 + 3));
    assert.ok(at(5, 10)[0] > 200 && at(5, 10)[2] < 60, `left is red: ${at(5, 10)}`);
    assert.ok(at(35, 10)[2] > 200 && at(35, 10)[0] < 60, `right is blue: ${at(35, 10)}`);
    assert.equal(clip.audioMask, 0);
    assert.equal(clip.audio.length, 0.4 * 8000);
  });

  it("names a picture that cannot be read", async () => {
    const file = join(dir, "broken.jpg");
    await writeFile(file, "not a jpeg at all");
    await assert.rejects(
      decodeClip(ref(file), { frames: 4, fps: 10, shortSide: 20 }),
      (err: unknown) =>
        err instanceof MediaError && /broken\.jpg' is not a readable picture/.test(err.message),
    );
  });
});
