import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FilterGeometry, scaledSize } from "../../core/geometry.js";
import { randomFor } from "../../core/random.js";
import type { ClipRef } from "../../core/records.js";
import { MediaError, runMediaTool } from "../../media/process.js";
import { chooseWindowStart, clipSamples, decodeClip } from "../../operators/decode.js";
import { parsePpmStream } from "../../operators/decode-ffmpeg.js";
import { makeGarbage, makeMedia, makeTempDir, removeDir, truncateMedia } from "../media.js";

function ref(path: string, start = 0, end = 100, index = 0): ClipRef {
  return { source: "test", id: `clip-${index}`, path, start, end, index, epoch: 0, captions: [], labels: [] };
}

/**
 * Which source frame a decoded frame-code frame shows: luma = 16 + 4 * frame number (BT.601 limited range);
 * swscale's RGB comes out ~1.5 levels low, hence the +1.3 luma.
 */
export function frameNumber(frames: Uint8Array, frameBytes: number, i: number): number {
  const rgb = frames[i * frameBytes + Math.floor(frameBytes / 2 / 3) * 3 + 1];
  return Math.round(((rgb * 219) / 255 + 1.3) / 4);
}

const small = { shortSide: 60, timeoutMs: 20_000 };

/** The shift of `b` against `a` within +-`most` samples where they differ least, and that mean difference. */
function bestAlignment(a: Float32Array, b: Float32Array, most: number): { by: number; meanDiff: number } {
  let best = { by: 0, meanDiff: Number.POSITIVE_INFINITY };
  for (let by = -most; by <= most; by++) {
    let sum = 0;
    for (let i = most; i < a.length - most; i++) sum += Math.abs(a[i] - b[i + by]);
    const meanDiff = sum / (a.length - 2 * most);
    if (meanDiff < best.meanDiff) best = { by, meanDiff };
  }
  return best;
}

for (const decoder of ["process", "libav"] as const) {
  describe(`decodeClip on real media (decoder ${decoder})`, () => {
    const opts = { ...small, decoder };
    let dir: string;
    const files: Record<string, string> = {};

    before(async () => {
      dir = await makeTempDir();
      const specs = {
        basic: { seconds: 4 },
        code: { seconds: 4, pattern: "frame-code", audio: "ramp", ext: "mkv", gop: 50 },
        ramp44: { seconds: 4, audio: "ramp", audioRate: 44_100, ext: "mkv" },
        silent: { seconds: 4, audioRate: false },
        odd: { seconds: 1, width: 321, height: 239 },
        rotated: { seconds: 1, rotate: 90 },
        portrait: { seconds: 1, width: 120, height: 160 },
        vfr: { seconds: 4, fps: 30, pattern: "frame-code", variableFrameRate: true, ext: "mkv" },
        short: { seconds: 2, pattern: "frame-code", fps: 10, audio: "ramp", ext: "mkv" },
      } as const;
      await Promise.all(
        Object.entries(specs).map(async ([name, spec]) => (files[name] = await makeMedia(dir, name, spec))),
      );
    });
    after(() => removeDir(dir));

    it("gives 32 frames at the short side and 3.2 s of 48 kHz mono audio", async () => {
      const clip = await decodeClip(ref(files.basic), opts);
      assert.equal(clip.numFrames, 32);
      assert.deepEqual([clip.width, clip.height], [80, 60]);
      assert.equal(clip.frames.length, 32 * 80 * 60 * 3);
      assert.equal(clip.audio.length, 153_600);
      assert.equal(clipSamples({ frames: 32, fps: 10, stride: 1, sampleRate: 48_000 }), 153_600);
      assert.equal(clip.audioMask, 1);
      assert.equal(clip.paddedFrames, 0);
      assert.ok(clip.audio.some((v) => Math.abs(v) > 0.1));
      assert.ok(
        clip.ref.start >= 0 &&
          clip.ref.end <= 4 + 1e-9 &&
          Math.abs(clip.ref.end - clip.ref.start - 3.2) < 1e-9,
      );
    });

    it("seeks frame-accurately and starts the audio at the same instant", async () => {
      for (const start of [1.0, 1.52]) {
        const clip = await decodeClip(ref(files.code, start, start + 1), {
          ...opts,
          frames: 8,
          window: "start",
        });
        const fb = clip.width * clip.height * 3;
        const numbers = Array.from({ length: 8 }, (_, i) => frameNumber(clip.frames, fb, i));
        // Output frame i is the source frame on screen at start + i / 10 s (codes wrap after 48).
        const expected = numbers.map((_, i) => Math.floor(start * 25 + 2.5 * i + 1e-6) % 48);
        assert.deepEqual(numbers, expected);
        // The ramp is t / 16: the first sample is the window start, one second later t + 1.
        assert.ok(Math.abs(clip.audio[0] - start / 16) < 0.002, `audio starts at ${clip.audio[0] * 16} s`);
        assert.ok(Math.abs(clip.audio[24_000] - (start + 0.5) / 16) < 0.002);
      }
    });

    it("resamples 44.1 kHz audio to 48 kHz", async () => {
      const clip = await decodeClip(ref(files.ramp44, 0.5, 4), { ...opts, window: "start" });
      assert.equal(clip.audio.length, 153_600);
      assert.ok(Math.abs(clip.audio[96_000] - 2.5 / 16) < 0.002, `${clip.audio[96_000] * 16}`);
    });

    it("a file without audio gives zeros and audioMask 0", async () => {
      const clip = await decodeClip(ref(files.silent), opts);
      assert.equal(clip.audioMask, 0);
      assert.equal(clip.audio.length, 153_600);
      assert.ok(clip.audio.every((v) => v === 0));
      assert.equal(clip.numFrames, 32);
    });

    it("odd sizes, rotation metadata and portrait video come out at the display orientation", async () => {
      const odd = await decodeClip(ref(files.odd), { ...opts, frames: 4 });
      assert.deepEqual([odd.width, odd.height], [Math.round((321 * 60) / 239), 60]);
      assert.deepEqual(scaledSize(321, 239, 60), { width: 81, height: 60 });
      const rotated = await decodeClip(ref(files.rotated), { ...opts, frames: 4 });
      assert.deepEqual([rotated.width, rotated.height], [60, 80]);
      const portrait = await decodeClip(ref(files.portrait), { ...opts, frames: 4 });
      assert.deepEqual([portrait.width, portrait.height], [60, 80]);
      const native = await decodeClip(ref(files.odd), { ...opts, shortSide: 0, frames: 2 });
      assert.deepEqual([native.width, native.height], [321, 239]);
    });

    it("resamples variable frame rate to a steady 10 fps", async () => {
      const clip = await decodeClip(ref(files.vfr, 0, 4), { ...opts, window: "start" });
      assert.equal(clip.numFrames, 32);
      assert.equal(clip.paddedFrames, 0);
      const fb = clip.width * clip.height * 3;
      const numbers = Array.from({ length: 32 }, (_, i) => frameNumber(clip.frames, fb, i));
      // 30 fps source (starting 21 ms late, behind the AAC priming); frames 20..39 were dropped, so the slots from
      // 0.7 s show frame 19 until frame 40 arrives at 1.354 s.
      assert.deepEqual(
        numbers.slice(0, 16),
        [0, 2, 5, 8, 11, 14, 17, 19, 19, 19, 19, 19, 19, 19, 41, 44],
        `${numbers}`,
      );
    });

    it("loops a video shorter than the window, audio in step, and says how many frames were padded", async () => {
      const clip = await decodeClip(ref(files.short, 0, 2), { ...opts, window: "start" });
      assert.equal(clip.paddedFrames, 12);
      const fb = clip.width * clip.height * 3;
      assert.equal(frameNumber(clip.frames, fb, 20), 0);
      assert.equal(frameNumber(clip.frames, fb, 31), 11);
      assert.ok(Math.abs(clip.audio[96_000 + 4800] - clip.audio[4800]) < 1e-6);
      assert.ok(Math.abs(clip.audio[4800] - 0.1 / 16) < 0.002);
    });

    it("moves a window that runs past the end of the file back inside it", async () => {
      const clip = await decodeClip(ref(files.basic, 3, 10), { ...opts, window: "start" });
      assert.equal(clip.paddedFrames, 0);
      assert.ok(Math.abs(clip.ref.start - 0.8) < 0.05, `start ${clip.ref.start}`);
    });

    it("temp-file and pipe capture give the same clips, looped and silent ones included", async (t) => {
      if (decoder === "libav") return t.skip("ffmpeg process outputs only");
      for (const [file, start, end] of [
        [files.short, 0, 2],
        [files.silent, 0, 100],
        [files.odd, 0, 100],
      ] as const) {
        const viaFile = await decodeClip(ref(file, start, end), opts, { capture: "file" });
        const viaPipe = await decodeClip(ref(file, start, end), opts, { capture: "pipe" });
        assert.deepStrictEqual(viaFile, viaPipe);
      }
    });

    it("the process decoder gives the same clips: cropped, flipped, rotated, looped and silent", async (t) => {
      if (decoder === "process") return t.skip("compared once, from the libav side");
      const crop =
        (x: number, y: number, w: number, h: number, flip: boolean) =>
        (width: number, height: number): FilterGeometry => ({
          box: { x, y, width: Math.min(w, width - x), height: Math.min(h, height - y) },
          outWidth: 32,
          outHeight: 24,
          flip,
        });
      const cases: [string, number, number, ((w: number, h: number) => FilterGeometry) | undefined][] = [
        [files.basic, 0, 100, undefined],
        [files.code, 0.37, 3, crop(6, 4, 41, 33, false)],
        [files.code, 1.52, 3, crop(3, 7, 50, 40, true)],
        [files.ramp44, 0.5, 4, crop(0, 0, 80, 60, false)],
        [files.silent, 0, 100, crop(11, 9, 37, 29, true)],
        [files.odd, 0, 100, crop(1, 1, 79, 58, false)],
        [files.portrait, 0, 100, undefined],
        [files.vfr, 0, 4, crop(4, 2, 48, 36, false)],
        [files.short, 0, 2, crop(2, 2, 30, 30, true)],
        [files.rotated, 0, 100, undefined],
        [files.rotated, 0, 100, crop(3, 5, 40, 50, true)],
      ];
      for (const [file, start, end, geometry] of cases) {
        const window = { ...opts, frames: 16, window: "random" as const, seed: 7 };
        const { audio: ours, ...oursRest } = await decodeClip(ref(file, start, end, 3), window, { geometry });
        const { audio: theirs, ...theirsRest } = await decodeClip(
          ref(file, start, end, 3),
          { ...window, decoder: "process" },
          { geometry },
        );
        // Same window, same frames to the byte (the same swscale steps), same looping.
        assert.deepStrictEqual(oursRest, theirsRest, `${file} at ${start}`);
        // The npm ffmpeg binary is FFmpeg 4.1 and node-av's libraries are newer: their AAC decoders round apart,
        // and in Matroska (millisecond timestamps) they place the audio up to ~0.1 ms apart.
        assert.equal(ours.length, theirs.length);
        const shift = bestAlignment(ours, theirs, 10);
        assert.ok(
          shift.meanDiff < 1e-3,
          `${file}: audio differs by ${shift.meanDiff} at best (${shift.by} samples)`,
        );
      }
    });

    it("paletted, 10-bit and RGB pictures and MPEG-TS decode as the process decoder does", async (t) => {
      if (decoder === "process") return t.skip("compared once, from the libav side");
      const made = async (name: string, args: string[]) => {
        const out = join(dir, name);
        const input = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=3"];
        const tone = ["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=3"];
        await runMediaTool("ffmpeg", ["-y", "-loglevel", "error", ...input, ...tone, ...args, out]);
        return out;
      };
      const cases = [
        await made("pal8.mkv", ["-c:v", "png", "-pix_fmt", "pal8", "-c:a", "aac"]),
        await made("tenbit.mkv", ["-c:v", "ffv1", "-pix_fmt", "yuv420p10le", "-c:a", "aac"]),
        await made("rgb.mkv", ["-c:v", "ffv1", "-pix_fmt", "rgb24", "-c:a", "aac"]),
        await made("stream.ts", [
          "-c:v",
          "libx264",
          "-g",
          "25",
          "-pix_fmt",
          "yuv420p",
          "-c:a",
          "aac",
          "-f",
          "mpegts",
        ]),
      ];
      for (const file of cases) {
        const window = { ...opts, frames: 8, window: "random" as const, seed: 5 };
        const crop = (w: number, h: number): FilterGeometry => ({
          box: { x: 3, y: 2, width: w - 9, height: h - 6 },
          outWidth: 32,
          outHeight: 24,
          flip: true,
        });
        const { audio: ours, ...oursRest } = await decodeClip(ref(file, 0, 3, 1), window, { geometry: crop });
        const { audio: theirs, ...theirsRest } = await decodeClip(
          ref(file, 0, 3, 1),
          { ...window, decoder: "process" },
          { geometry: crop },
        );
        assert.deepStrictEqual(oursRest, theirsRest, file);
        const shift = bestAlignment(ours, theirs, 10);
        assert.ok(
          shift.meanDiff < 1e-3,
          `${file}: audio differs by ${shift.meanDiff} at best (${shift.by} samples)`,
        );
      }
    });

    it("corrupt, truncated and missing files fail with a MediaError naming the file", async () => {
      const garbage = await makeGarbage(`${dir}/garbage.mp4`);
      const truncated = await truncateMedia(files.basic, `${dir}/truncated.mp4`, 0.3);
      for (const file of [garbage, truncated, `${dir}/missing.mp4`]) {
        await assert.rejects(decodeClip(ref(file), opts), (err: unknown) => {
          assert.ok(err instanceof MediaError, String(err));
          assert.ok(err.message.includes(file), err.message);
          assert.notEqual(err.kind, "timeout");
          return true;
        });
      }
    });
  });
}

describe("window choice and PPM parsing", () => {
  it("random windows stay inside the ref and are keyed by sample", () => {
    for (let i = 0; i < 200; i++) {
      const s = chooseWindowStart({ start: 2, end: 10 }, 3.2, "random", randomFor(1, 0, i, "window"));
      assert.ok(s >= 2 && s <= 6.8);
      assert.equal(s, chooseWindowStart({ start: 2, end: 10 }, 3.2, "random", randomFor(1, 0, i, "window")));
    }
    assert.equal(chooseWindowStart({ start: 2, end: 10 }, 3.2, "centre", randomFor(0, 0, 0, "w")), 4.4);
    // Shorter than the clip: widened around its centre, inside [0, duration].
    assert.equal(chooseWindowStart({ start: 1, end: 2 }, 3.2, "random", randomFor(0, 0, 0, "w"), 10), 0);
    assert.ok(
      Math.abs(chooseWindowStart({ start: 8, end: 9 }, 3.2, "random", randomFor(0, 0, 0, "w"), 9) - 5.8) <
        1e-9,
    );
  });

  it("parses concatenated PPM frames and drops a cut-off last one", () => {
    const frame = (v: number) =>
      Buffer.concat([Buffer.from("P6\n2 1\n255\n"), Buffer.from([v, v, v, v, v, v])]);
    const data = Buffer.concat([frame(1), frame(2), frame(3).subarray(0, 14)]);
    const parsed = parsePpmStream(data, "x");
    assert.equal(parsed.frames.length, 2);
    assert.deepEqual([parsed.width, parsed.height], [2, 1]);
    assert.equal(parsed.frames[1][0], 2);
  });
});
