import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runMediaTool } from "../../media/ffmpeg.js";

const VATT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "vatt.js");

function vatt(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [VATT, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-cli-"));
  await runMediaTool("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2"],
    ...["-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    join(dir, "ok.mp4"),
  ]);
  await writeFile(join(dir, "notes.mp4"), "just some text\n");
  const whole = await readFile(join(dir, "ok.mp4"));
  await writeFile(join(dir, "cut.mp4"), whole.subarray(0, whole.length >> 2));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("vatt", () => {
  it("lists its subcommands in --help", () => {
    const r = vatt("--help");
    assert.equal(r.code, 0);
    for (const name of ["probe", "synth"]) assert.match(r.stdout, new RegExp(`^  ${name} `, "m"));
  });

  it("rejects an unknown command and bad options with exit code 2 and one line", () => {
    const unknown = vatt("frobnicate");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const badFlag = vatt("probe", "--nope", "x.mp4");
    assert.equal(badFlag.code, 2);
    assert.equal(badFlag.stderr.trim().split("\n").length, 1);
    const badKind = vatt("synth", "--kind", "kinetics", "--out", join(dir, "x"));
    assert.equal(badKind.code, 2);
    assert.match(
      badKind.stderr,
      /--kind must be one of howto100m, audioset, ucf101, hmdb51, esc50, msrvtt, youcook2, images, got 'kinetics'/,
    );
    const badNumber = vatt("synth", "--kind", "howto100m", "--out", join(dir, "x"), "--videos", "many");
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--videos must be an integer/);
  });

  it("writes a downstream synthetic dataset, and says how many files a layout needs", async () => {
    const out = join(dir, "esc50");
    const r = vatt("synth", "--kind", "esc50", "--videos", "8", "--seed", "2", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote esc50 dataset to .*esc50: 8 media files, [\d.]+ s$/m);
    const csv = (await readFile(join(out, "meta", "esc50.csv"), "utf8")).trim().split("\n");
    assert.equal(csv.length, 9);
    const few = vatt("synth", "--kind", "ucf101", "--videos", "3", "--out", join(dir, "ucf"));
    assert.equal(few.code, 1);
    assert.match(few.stderr, /--videos 3 leaves classes empty; give at least 8/);
  });

  it("shows help for each subcommand", () => {
    for (const name of ["probe", "synth"]) {
      const r = vatt(name, "--help");
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^Usage: vatt ${name}`));
    }
  });

  it("probes a good file, as text and as JSON", () => {
    const text = vatt("probe", join(dir, "ok.mp4"));
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /h264 64x48/);
    const json = vatt("probe", "--json", join(dir, "ok.mp4"));
    const info = JSON.parse(json.stdout);
    assert.equal(info.hasAudio, true);
    assert.equal(info.avgFrameRate, 10);
  });

  for (const name of ["missing.mp4", "notes.mp4", "cut.mp4"]) {
    it(`fails on ${name} with a one-line error that names the file`, () => {
      const file = join(dir, name);
      const r = vatt("probe", file);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].includes(file), lines[0]);
      assert.equal(r.stdout, "");
    });
  }
});
