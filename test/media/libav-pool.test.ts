import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LibavDecodeJob } from "../../media/libav-input.js";
import { LibavPool, libavStatus } from "../../media/libav-pool.js";
import { probe } from "../../media/probe.js";
import { MediaError } from "../../media/process.js";
import { makeGarbage, makeMedia, makeTempDir, removeDir } from "../media.js";

function job(file: string, start = 0, frames = 4): LibavDecodeJob {
  return {
    file,
    start,
    frames,
    rate: 10,
    seconds: frames / 10,
    sampleRate: 16_000,
    samples: (frames / 10) * 16_000,
    shortSide: 48,
  };
}

describe("the libav decoding pool", () => {
  let dir: string;
  const files: Record<string, string> = {};
  const pool = new LibavPool(2);

  before(async () => {
    assert.deepEqual(await libavStatus(), { available: true }, "node-av is a dependency: it must load here");
    dir = await makeTempDir();
    const specs = {
      basic: { seconds: 2 },
      code: { seconds: 4, pattern: "frame-code", audio: "ramp", ext: "mkv" },
      rotated: { seconds: 1, rotate: 270 },
      silent: { seconds: 1, audioRate: false, width: 98, height: 50 },
    } as const;
    for (const [name, spec] of Object.entries(specs)) files[name] = await makeMedia(dir, name, spec);
  });
  after(async () => {
    await pool.close();
    await removeDir(dir);
  });

  it("probes what ffprobe reads: size, rotation, duration, audio", async () => {
    for (const file of Object.values(files)) {
      const ours = await pool.probe(file);
      const theirs = await probe(file);
      for (const key of [
        "width",
        "height",
        "rotation",
        "hasVideo",
        "hasAudio",
        "audioSampleRate",
        "audioChannels",
      ]) {
        assert.equal(ours[key as keyof typeof ours], theirs[key as keyof typeof theirs], `${file}: ${key}`);
      }
      assert.equal(ours.videoCodec, "h264");
      assert.ok(
        Math.abs(ours.duration - theirs.duration) < 0.05,
        `${file}: ${ours.duration} vs ${theirs.duration}`,
      );
    }
  });

  it("answers many jobs queued at once, each with its own clip", async () => {
    const starts = Array.from({ length: 24 }, (_, i) => (i % 12) * 0.25);
    const clips = await Promise.all(starts.map((start) => pool.decode(job(files.code, start))));
    const alone = await pool.decode(job(files.code, 1.25));
    for (const [i, clip] of clips.entries()) {
      assert.equal(clip.got, 4);
      assert.deepEqual([clip.width, clip.height], [64, 48]);
      // The ramp is t / 16 at 16 kHz: each clip's audio starts at its own window.
      assert.ok(Math.abs((clip.audio?.[0] ?? Number.NaN) - starts[i] / 16) < 0.002, `clip ${i}`);
    }
    assert.deepEqual(clips[5].frames, alone.frames);
  });

  it("fails a missing or garbage file with a MediaError naming it, and goes on", async () => {
    const garbage = await makeGarbage(join(dir, "garbage.mp4"));
    for (const [file, kind] of [
      [join(dir, "missing.mp4"), "missing"],
      [garbage, "invalid"],
    ] as const) {
      await assert.rejects(pool.decode(job(file)), (err: unknown) => {
        assert.ok(err instanceof MediaError, String(err));
        assert.equal(err.kind, kind);
        assert.ok(err.message.includes(file), err.message);
        return true;
      });
    }
    assert.equal((await pool.decode(job(files.basic))).got, 4);
  });

  it("a file without audio decodes its pictures and no audio", async () => {
    const clip = await pool.decode(job(files.silent));
    assert.equal(clip.audio, undefined);
    assert.deepEqual([clip.got, clip.width, clip.height], [4, 94, 48]);
  });

  it("cancels a queued job at once, and the others still come", async () => {
    const stop = new AbortController();
    const jobs = Array.from({ length: 6 }, (_, i) =>
      pool.decode(job(files.code, i * 0.3), i === 5 ? { signal: stop.signal } : {}),
    );
    stop.abort();
    await assert.rejects(jobs[5], (err: unknown) => err instanceof MediaError && err.kind === "cancelled");
    for (const clip of await Promise.all(jobs.slice(0, 5))) assert.equal(clip.got, 4);
  });

  it("stops a decode past its time limit, replaces its thread, and keeps the jobs queued behind it", async () => {
    // A FIFO nobody writes to: opening it blocks the decoding thread until the test writes and closes it.
    const fifo = join(dir, "hang.mp4");
    execFileSync("mkfifo", [fifo]);
    const lonely = new LibavPool(1);
    try {
      const hung = lonely.decode(job(fifo), { timeoutMs: 300 });
      const behind = lonely.decode(job(files.basic));
      await assert.rejects(hung, (err: unknown) => {
        assert.ok(err instanceof MediaError && err.kind === "timeout", String(err));
        assert.ok(err.message.includes(fifo), err.message);
        return true;
      });
      assert.equal((await behind).got, 4);
    } finally {
      // Unblock the stopped thread so that it can end. Non-blocking: on a loaded machine the limit can pass before
      // the thread ever opened the FIFO, and then there is no reader to pair with (ENXIO), nothing to unblock.
      const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(
        (err: NodeJS.ErrnoException) => {
          if (err.code === "ENXIO") return undefined;
          throw err;
        },
      );
      await writer?.close();
      await lonely.close();
    }
  });
});
