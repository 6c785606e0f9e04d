import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { mediaToolPath } from "../../media/binaries.js";
import { type CapturedOutput, runMediaToolCaptured } from "../../media/capture.js";
import { MediaError, runMediaTool, streamMediaTool } from "../../media/process.js";
import { SPAWNER_MIN_RSS } from "../../media/spawner.js";
import { childProcesses, waitForNoChildren } from "../processes.js";

/** Commands of our descendants, not only children: captured runs start under the spawner process. */
function descendantCommands(): string[] {
  const parentOf = new Map<number, { ppid: number; command: string }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      parentOf.set(Number(entry), { ppid, command: stat.slice(stat.indexOf("(") + 1, close) });
    } catch {
      // exited while we looked
    }
  }
  const isOurs = (pid: number): boolean => {
    for (let p = parentOf.get(pid)?.ppid, hops = 0; p !== undefined && hops < 8; hops++) {
      if (p === process.pid) return true;
      p = parentOf.get(p)?.ppid;
    }
    return false;
  };
  return [...parentOf].filter(([pid]) => isOurs(pid)).map(([, v]) => v.command);
}

async function noDescendant(pattern: RegExp, timeoutMs = 3000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = descendantCommands().filter((c) => pattern.test(c));
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function readAll(out: CapturedOutput): Promise<Uint8Array> {
  const all = new Uint8Array(out.size);
  assert.equal(await out.readInto([all], 0), out.size);
  return all;
}

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

describe("runMediaToolCaptured", () => {
  // 3 frames of 4x2 rgb24 on stdout and 1000 f32 samples on fd 3.
  const TWO_OUTPUTS = [
    ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=4x2:rate=10"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000"],
    ...["-map", "0:v", "-frames:v", "3", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
    ...["-map", "1:a", "-t", "0.125", "-c:a", "pcm_f32le", "-f", "f32le", "pipe:3"],
  ];

  // First: once started, the spawner stays for the rest of the process.
  it("spawns directly while this process is small: no spawner, no second Node process", async () => {
    assert.ok(process.memoryUsage.rss() < SPAWNER_MIN_RSS, "this test process is expected to be small");
    const during = runMediaToolCaptured(
      "ffmpeg",
      [...ENDLESS, "-t", "0.6", "-f", "null", "-"],
      0,
      {},
      async () => 0,
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(descendantCommands(), ["ffmpeg"]);
    await during;
  });

  it("captures stdout and fd 3 whole, the same through temp files and through pipes", async () => {
    for (const spawner of ["never", "always"] as const) {
      const got: Uint8Array[][] = [];
      for (const capture of ["file", "pipe"] as const) {
        got.push(
          await runMediaToolCaptured("ffmpeg", TWO_OUTPUTS, 1, { capture, spawner }, (outs) =>
            Promise.all(outs.map(readAll)),
          ),
        );
      }
      assert.equal(got[0][0].length, 3 * 4 * 2 * 3);
      assert.equal(got[0][1].length, 1000 * 4);
      assert.deepEqual(got[0], got[1]);
    }
  });

  it("scatters an output into several buffers from any position and stops at its end", async () => {
    for (const [capture, spawner] of [
      ["file", "never"],
      ["file", "always"],
      ["pipe", "never"],
    ] as const) {
      await runMediaToolCaptured("ffmpeg", TWO_OUTPUTS, 1, { capture, spawner }, async ([video]) => {
        const all = await readAll(video);
        const parts = [new Uint8Array(5), new Uint8Array(0), new Uint8Array(40), new Uint8Array(100)];
        assert.equal(await video.readInto(parts, 7), all.length - 7);
        assert.deepEqual([...parts[0], ...parts[2]], [...all.subarray(7, 52)]);
        assert.deepEqual([...parts[3].subarray(0, all.length - 52)], [...all.subarray(52)]);
      });
    }
  });

  it("reuses capture files without ever showing an earlier run's bytes", async () => {
    const frames = (size: string, n: number) => [
      ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", `testsrc=size=${size}:rate=10`],
      ...["-frames:v", String(n), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
    ];
    // A large output, then small ones, likely into the same kept file: each sees exactly its own bytes. Files are
    // kept only when the spawner reports the sizes written, so it runs these.
    const spawner = "always";
    const large = await runMediaToolCaptured(
      "ffmpeg",
      frames("64x48", 5),
      0,
      { spawner },
      async ([out]) => out.size,
    );
    assert.equal(large, 5 * 64 * 48 * 3);
    for (let run = 0; run < 3; run++) {
      const [size, read, direct] = await runMediaToolCaptured(
        "ffmpeg",
        frames("4x2", 2),
        0,
        { spawner },
        async ([out]) =>
          [out.size, await out.readInto([new Uint8Array(10_000)], 0), await readAll(out)] as const,
      );
      assert.equal(size, 2 * 4 * 2 * 3);
      assert.equal(read, size);
      const viaPipe = await runMediaToolCaptured(
        "ffmpeg",
        frames("4x2", 2),
        0,
        { capture: "pipe" },
        ([out]) => readAll(out),
      );
      assert.deepEqual(direct, viaPipe);
    }
  });

  it("kills a run at its time limit or on abort, with no process left at any depth", async () => {
    const endless = [...ENDLESS, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"];
    for (const spawner of ["never", "always"] as const) {
      await assert.rejects(
        runMediaToolCaptured("ffmpeg", endless, 0, { timeoutMs: 300, spawner }, async () => 0),
        (err: unknown) => err instanceof MediaError && err.kind === "timeout",
      );
      assert.deepEqual(await noDescendant(/ffmpeg/), []);
      const controller = new AbortController();
      const run = runMediaToolCaptured(
        "ffmpeg",
        endless,
        0,
        { signal: controller.signal, spawner },
        async () => 0,
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(descendantCommands().filter((c) => /ffmpeg/.test(c)).length, 1);
      // Started by us, or by the spawner (then a grandchild).
      assert.equal(
        childProcesses().some((c) => /ffmpeg/.test(c.command)),
        spawner === "never",
      );
      controller.abort();
      await assert.rejects(run, (err: unknown) => err instanceof MediaError && err.kind === "cancelled");
      assert.deepEqual(await noDescendant(/ffmpeg/), []);
    }
  });

  it("names the file and carries ffmpeg's message; a missing binary says how to fix it", async () => {
    await assert.rejects(
      runMediaToolCaptured(
        "ffmpeg",
        ["-hide_banner", "-i", "/nonexistent/clip.mp4", "-f", "null", "-"],
        0,
        { file: "/nonexistent/clip.mp4" },
        async () => 0,
      ),
      (err: unknown) =>
        err instanceof MediaError && err.kind === "missing" && /nonexistent\/clip\.mp4/.test(err.message),
    );
    const saved = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = "/nonexistent/bin/ffmpeg";
    try {
      for (const spawner of ["never", "always"] as const) {
        await assert.rejects(
          runMediaToolCaptured("ffmpeg", ["-version"], 0, { spawner }, async () => 0),
          /could not start ffmpeg.*FFMPEG_PATH/,
        );
      }
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
  });
});
