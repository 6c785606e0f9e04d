import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseRate, probe } from "../../media/probe.js";
import { MediaError, runMediaTool } from "../../media/process.js";

let dir: string;

async function ffmpeg(...args: string[]): Promise<void> {
  await runMediaTool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args]);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-probe-"));
  // 2 s of 25 fps video with 44.1 kHz stereo audio.
  await ffmpeg(
    ...["-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=2"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2", "-ac", "2"],
    ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", join(dir, "av.mp4")],
  );
  await ffmpeg(
    ...["-f", "lavfi", "-i", "testsrc=size=64x96:rate=30000/1001:duration=1"],
    ...["-c:v", "libx264", "-pix_fmt", "yuv420p", join(dir, "silent-portrait.mp4")],
  );
  await ffmpeg(
    ...["-i", join(dir, "silent-portrait.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90"],
    join(dir, "rotated.mp4"),
  );
  await writeFile(join(dir, "text.mp4"), "this is not a video\n".repeat(20));
  const whole = await readFile(join(dir, "av.mp4"));
  await writeFile(join(dir, "truncated.mp4"), whole.subarray(0, Math.floor(whole.length / 3)));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parseRate", () => {
  it("reads ffprobe's fractions", () => {
    assert.equal(parseRate("25/1"), 25);
    assert.ok(Math.abs(parseRate("30000/1001") - 29.97003) < 1e-4);
    assert.equal(parseRate("0/0"), 0);
    assert.equal(parseRate(undefined), 0);
  });
});

describe("probe", () => {
  it("reads duration, rates, size and audio", async () => {
    const info = await probe(join(dir, "av.mp4"));
    assert.ok(Math.abs(info.duration - 2) < 0.1, `duration ${info.duration}`);
    assert.equal(info.width, 96);
    assert.equal(info.height, 64);
    assert.equal(info.avgFrameRate, 25);
    assert.equal(info.realFrameRate, 25);
    assert.equal(info.rotation, 0);
    assert.equal(info.hasVideo, true);
    assert.equal(info.hasAudio, true);
    assert.equal(info.videoCodec, "h264");
    assert.equal(info.audioCodec, "aac");
    assert.equal(info.audioSampleRate, 44100);
    assert.equal(info.audioChannels, 2);
  });

  it("reports a file without audio, an NTSC rate and rotation metadata", async () => {
    const silent = await probe(join(dir, "silent-portrait.mp4"));
    assert.equal(silent.hasAudio, false);
    assert.equal(silent.audioSampleRate, 0);
    assert.equal(silent.width, 64);
    assert.equal(silent.height, 96);
    assert.ok(Math.abs(silent.realFrameRate - 29.97) < 0.01);
    const rotated = await probe(join(dir, "rotated.mp4"));
    // A quarter turn. Which one depends on the muxer: the npm-shipped 2018 ffmpeg stores `rotate=90` as a matrix
    // that it (and ffprobe) read back as 270 degrees clockwise.
    assert.ok([90, 270].includes(rotated.rotation), `rotation ${rotated.rotation}`);
    assert.equal(rotated.width, 64, "coded size, before rotation");
  });

  for (const [name, kind, pattern] of [
    ["missing.mp4", "missing", /no such file/],
    ["text.mp4", "invalid", /Invalid data found/],
    ["truncated.mp4", "invalid", /moov atom not found|Invalid data/],
  ] as const) {
    it(`fails on ${name} with the file's name and ffprobe's reason`, async () => {
      const file = join(dir, name);
      await assert.rejects(probe(file), (err: unknown) => {
        assert.ok(err instanceof MediaError, String(err));
        assert.equal(err.kind, kind);
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, pattern);
        assert.equal(err.message.includes("\n"), false, "one line");
        return true;
      });
    });
  }
});
