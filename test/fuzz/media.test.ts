import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { probe } from "../../media/probe.js";
import { MediaError } from "../../media/process.js";
import { parsePpmStream } from "../../operators/decode-ffmpeg.js";
import { fixtureDir } from "../datasets/fixtures.js";
import { corpusRoot } from "./harness.js";
import { mediaTarget } from "./targets/media.js";
import { quickFuzz } from "./targets.js";

describe("fuzz: media files through probe and decode", () => {
  it("keeps the contract on the corpus and on generated inputs", async () => {
    const { corpus, generated } = await quickFuzz(mediaTarget);
    assert.ok(corpus >= 6);
    assert.equal(generated, mediaTarget.quickRuns);
  });

  it("a PPM stream of one endless token is a MediaError, not a stack overflow", () => {
    assert.throws(
      () => parsePpmStream(new Uint8Array(1 << 20).fill(0x41), "f.ppm"),
      (err: Error) =>
        err instanceof MediaError && /f\.ppm': unexpected frame header 'A{32} /.test(err.message),
    );
  });

  it("probing half an MP4 is a MediaError naming the file", async () => {
    const half = await readFile(join(corpusRoot(), "media", "truncated-half.mp4"));
    const dir = await fixtureDir({ "half.mp4": half });
    const file = join(dir, "half.mp4");
    await assert.rejects(
      probe(file),
      (err: Error) => err instanceof MediaError && err.message.includes(file),
    );
  });
});
