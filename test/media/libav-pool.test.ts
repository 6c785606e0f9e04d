import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { constants } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LibavDecodeJob } from "../../media/libav-input.js";
import { LibavPool, libavStatus } from "../../media/libav-pool.js";
import { probe } from "../../media/probe.js";
import { MediaError } from "../../media/process.js";
import { makeGarbage, makeMedia, makeTempDir, removeDir } from "../media.js";
import { childProcesses, waitForNoChildren } from "../processes.js";

/** Runs `body` with the decoder's test switches set (media/libav-worker.ts): children forked meanwhile see them. */
async function withSwitches<T>(env: Record<string, string>, body: () => Promise<T>): Promise<T> {
  Object.assign(process.env, env);
  try {
    return await body();
  } finally {
    for (const key of Object.keys(env)) delete process.env[key];
  }
}

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

  it("a file that crashes the decoder costs its clip: tried twice, in two processes, then a crashed MediaError", async () => {
    const crashing = await makeMedia(dir, "crash-me", { seconds: 1 });
    const log = join(dir, "attempts-crash.log");
    const others = new Set(childProcesses().map((c) => c.pid));
    const lonely = await withSwitches(
      { VATT_TEST_DECODER_CRASH: "crash-me.mp4", VATT_TEST_DECODER_LOG: log },
      async () => {
        const pool = new LibavPool(1);
        const before = pool.decode(job(files.basic));
        const crashed = pool.decode(job(crashing));
        const behind = pool.decode(job(files.code));
        await assert.rejects(crashed, (err: unknown) => {
          assert.ok(err instanceof MediaError, String(err));
          assert.equal(err.kind, "crashed");
          assert.match(err.message, /crashed the decoder \(SIGSEGV\) twice/);
          assert.ok(err.message.includes(crashing), err.message);
          return true;
        });
        assert.equal((await before).got, 4);
        assert.equal((await behind).got, 4, "queued behind the crash: re-posted to the new process");
        assert.equal((await pool.decode(job(files.basic))).got, 4);
        return pool;
      },
    );
    const tries = (await readFile(log, "utf8"))
      .trim()
      .split("\n")
      .filter((l) => l.includes("crash-me.mp4"));
    assert.equal(tries.length, 2, tries.join("; "));
    assert.notEqual(tries[0].split(" ")[2], tries[1].split(" ")[2], "each try in its own process");
    await lonely.close();
    assert.deepEqual(await waitForNoChildren(/node/, 3000, others), [], "no decoding process left");
  });

  it("a file that hangs the decoder is killed at its limit twice, then a timeout MediaError", async () => {
    const hanging = await makeMedia(dir, "hang-me", { seconds: 1 });
    const log = join(dir, "attempts-hang.log");
    const others = new Set(childProcesses().map((c) => c.pid));
    await withSwitches({ VATT_TEST_DECODER_HANG: "hang-me.mp4", VATT_TEST_DECODER_LOG: log }, async () => {
      const pool = new LibavPool(1);
      try {
        assert.equal((await pool.decode(job(files.basic))).got, 4, "started: the limit is the decode's");
        const started = Date.now();
        const hung = pool.decode(job(hanging), { timeoutMs: 400 });
        const behind = pool.decode(job(files.code));
        await assert.rejects(hung, (err: unknown) => {
          assert.ok(err instanceof MediaError, String(err));
          assert.equal(err.kind, "timeout");
          assert.match(err.message, /hung the decoder past its 0.4 s limit twice/);
          return true;
        });
        assert.ok(Date.now() - started < 10_000, "each try was killed at its limit");
        assert.equal((await behind).got, 4);
      } finally {
        await pool.close();
      }
    });
    const tries = (await readFile(log, "utf8"))
      .trim()
      .split("\n")
      .filter((l) => l.includes("hang-me.mp4"));
    assert.equal(tries.length, 2, tries.join("; "));
    assert.deepEqual(
      await waitForNoChildren(/node/, 3000, others),
      [],
      "the hung processes were killed and reaped",
    );
  });

  it("stops a decode past its time limit, replaces its thread, and keeps the jobs queued behind it", async () => {
    // A FIFO nobody writes to: opening it blocks the decoding thread until the test writes and closes it.
    const fifo = join(dir, "hang.mp4");
    execFileSync("mkfifo", [fifo]);
    const lonely = new LibavPool(1, "thread");
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
