import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MediaError, mediaToolPath, runMediaTool, streamMediaTool } from "../../pipeline/ffmpeg.js";
import { childProcesses, waitForNoChildren } from "../processes.js";

// An endless synthetic source: ffmpeg never stops on its own, so only our time limit or cancel can end it.
const ENDLESS = [
  "-hide_banner",
  "-loglevel",
  "error",
  "-re",
  "-f",
  "lavfi",
  "-i",
  "testsrc=size=64x48:rate=10",
];

describe("mediaToolPath", () => {
  it("prefers FFMPEG_PATH / FFPROBE_PATH, then the npm-shipped binary", () => {
    const saved = process.env.FFMPEG_PATH;
    try {
      process.env.FFMPEG_PATH = "/opt/custom/ffmpeg";
      assert.equal(mediaToolPath("ffmpeg"), "/opt/custom/ffmpeg");
      delete process.env.FFMPEG_PATH;
      assert.match(mediaToolPath("ffmpeg"), /@ffmpeg-installer/);
      assert.match(mediaToolPath("ffprobe"), /@ffprobe-installer/);
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
  });
});

describe("runMediaTool", () => {
  it("returns stdout of a finished run", async () => {
    const out = await runMediaTool("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:size=4x2:rate=1"],
      ...["-frames:v", "2", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
    ]);
    assert.equal(out.length, 2 * 4 * 2 * 3);
    assert.ok(out[0] > 240 && out[1] < 15 && out[2] < 15, `red pixel, got ${[...out.subarray(0, 3)]}`);
  });

  it("rejects with the file's name and ffmpeg's own message", async () => {
    await assert.rejects(
      runMediaTool("ffmpeg", ["-hide_banner", "-i", "/nonexistent/clip.mp4", "-f", "null", "-"], {
        file: "/nonexistent/clip.mp4",
      }),
      (err: unknown) => {
        assert.ok(err instanceof MediaError);
        assert.equal(err.kind, "missing");
        assert.match(err.message, /\/nonexistent\/clip\.mp4/);
        assert.match(err.message, /No such file or directory/);
        return true;
      },
    );
  });

  it("kills a run that passes its time limit and leaves no process behind", async () => {
    const started = Date.now();
    await assert.rejects(
      runMediaTool("ffmpeg", [...ENDLESS, "-f", "null", "-"], { timeoutMs: 300 }),
      (err: unknown) => {
        assert.ok(err instanceof MediaError);
        assert.equal(err.kind, "timeout");
        assert.match(err.message, /timed out after 300 ms/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(await waitForNoChildren(/ffmpeg/), []);
  });

  it("kills a run when its signal aborts", async () => {
    const controller = new AbortController();
    const run = runMediaTool("ffmpeg", [...ENDLESS, "-f", "null", "-"], { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(childProcesses().filter((c) => /ffmpeg/.test(c.command)).length, 1);
    controller.abort();
    await assert.rejects(run, (err: unknown) => err instanceof MediaError && err.kind === "cancelled");
    assert.deepEqual(await waitForNoChildren(/ffmpeg/), []);
  });

  it("reports a binary that cannot start", async () => {
    const saved = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = "/nonexistent/bin/ffmpeg";
    try {
      await assert.rejects(runMediaTool("ffmpeg", ["-version"]), /could not start ffmpeg.*FFMPEG_PATH/);
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
  });
});

describe("streamMediaTool", () => {
  it("yields exact frame-sized chunks", async () => {
    const frameBytes = 8 * 6 * 3;
    const chunks: number[] = [];
    for await (const chunk of streamMediaTool(
      "ffmpeg",
      [
        ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=8x6:rate=10"],
        ...["-frames:v", "7", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
      ],
      frameBytes,
    )) {
      chunks.push(chunk.length);
    }
    assert.deepEqual(chunks, Array(7).fill(frameBytes));
  });

  it("kills the process when the consumer stops early", async () => {
    let taken = 0;
    for await (const _ of streamMediaTool(
      "ffmpeg",
      [...ENDLESS, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
      64 * 48 * 3,
    )) {
      if (++taken === 3) break;
    }
    assert.equal(taken, 3);
    const left = await waitForNoChildren(/ffmpeg/);
    assert.deepEqual(left, [], "no ffmpeg (running or zombie) after the consumer broke off");
  });

  it("throws the tool's error after the output it did produce", async () => {
    const it = streamMediaTool(
      "ffmpeg",
      ["-hide_banner", "-i", "/nonexistent.mp4", "-f", "rawvideo", "pipe:1"],
      16,
      {
        file: "/nonexistent.mp4",
      },
    );
    await assert.rejects(it.next(), /nonexistent\.mp4/);
  });
});
