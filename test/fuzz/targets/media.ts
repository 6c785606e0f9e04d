/**
 * Media files through probe (pipeline/probe.ts, ffprobe) and decode (operators/decode.ts: the ffmpeg process and
 * the in-process libav decoder), plus the PPM stream parser the process decoder reads frames with. Seeds are tiny
 * files made with ffmpeg (test/media.ts); mutations flip, cut, splice and repeat their bytes.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClipRef } from "../../../core/records.js";
import { libavPool } from "../../../media/libav-pool.js";
import { probe } from "../../../media/probe.js";
import { decodeClip } from "../../../operators/decode.js";
import { parsePpmStream } from "../../../operators/decode-ffmpeg.js";
import { makeMedia } from "../../media.js";
import { expectClearOutcome, expectThat, type FuzzInput, type FuzzTarget } from "../harness.js";

/** Seed files, made once per process (each takes an ffmpeg run). */
let made: Promise<FuzzInput[]> | undefined;

async function makeSeeds(): Promise<FuzzInput[]> {
  const dir = await mkdtemp(join(tmpdir(), "vatt-fuzz-media-"));
  try {
    const small = { width: 32, height: 24, seconds: 0.6, fps: 10, audioRate: 8000 } as const;
    const files = [
      await makeMedia(dir, "clip", { ...small, gop: 3 }),
      await makeMedia(dir, "pcm", { ...small, audio: "ramp", ext: "mkv" }),
      await makeMedia(dir, "silent", { ...small, audioRate: false }),
    ];
    const inputs = await Promise.all(
      files.map(async (f) => ({
        ext: f.slice(f.lastIndexOf(".") + 1),
        bytes: new Uint8Array(await readFile(f)),
      })),
    );
    const ppm = Buffer.concat([
      Buffer.from("P6\n4 2\n255\n"),
      Buffer.alloc(24, 7),
      Buffer.from("P6 4 2 255 "),
      Buffer.alloc(24, 9),
    ]);
    return [...inputs, { ext: "ppm", bytes: new Uint8Array(ppm) }];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function clipRef(path: string): ClipRef {
  return {
    source: "fuzz",
    id: "clip",
    path,
    start: 0,
    end: 0.6,
    index: 0,
    epoch: 0,
    captions: [],
    labels: [],
  };
}

const DECODE = {
  frames: 4,
  fps: 5,
  shortSide: 24,
  sampleRate: 8000,
  timeoutMs: 8_000,
  window: "start" as const,
};

export const mediaTarget: FuzzTarget = {
  name: "media",
  readers: "probe (ffprobe), decodeClip (ffmpeg process and libav in-process), parsePpmStream",
  seeds() {
    made ??= makeSeeds();
    return made;
  },
  dictionary: [
    "ftyp",
    "moov",
    "mdat",
    "mvhd",
    "trak",
    "\u001aE\u00df\u00a3",
    "P6",
    "\n",
    " ",
    "255",
    "65535",
    "99999",
  ],
  quickRuns: 10,
  caseTimeoutMs: 40_000,
  async close() {
    await libavPool().close();
  },
  async run(input, dir) {
    if (input.ext === "ppm") {
      await expectClearOutcome("parsePpmStream", ["frames.ppm"], 2_000, async () => {
        const ppm = parsePpmStream(input.bytes, "frames.ppm");
        const size = ppm.width * ppm.height * 3;
        expectThat(
          "parsePpmStream",
          ppm.frames.every((f) => f.length === size),
          `frames of other than ${size} bytes`,
        );
      });
      return;
    }
    const file = join(dir, `clip.${input.ext}`);
    await writeFile(file, input.bytes);
    const info = await expectClearOutcome("probe", [file], 12_000, () => probe(file, { timeoutMs: 10_000 }));
    if (info) {
      const counts = [
        info.duration,
        info.width,
        info.height,
        info.avgFrameRate,
        info.realFrameRate,
        info.audioSampleRate,
        info.audioChannels,
      ];
      expectThat(
        "probe",
        counts.every((n) => Number.isFinite(n) && n >= 0),
        `probe gave ${JSON.stringify(info)}`,
      );
    }
    for (const decoder of ["process", "libav"] as const) {
      const clip = await expectClearOutcome(`decodeClip (${decoder})`, [file], 12_000, () =>
        decodeClip(clipRef(file), { ...DECODE, decoder }),
      );
      if (clip) {
        expectThat(
          `decodeClip (${decoder})`,
          clip.frames.length === clip.numFrames * clip.width * clip.height * 3,
          `${clip.frames.length} frame bytes for ${clip.numFrames} frames of ${clip.width}x${clip.height}`,
        );
        expectThat(
          `decodeClip (${decoder})`,
          clip.audio.every((v) => v >= -1 && v <= 1),
          "audio outside [-1, 1]",
        );
      }
    }
  },
};
