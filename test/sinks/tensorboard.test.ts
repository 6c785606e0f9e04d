/**
 * TensorBoard event files, checked by an independent reader (test/sinks/tfevents-reader.ts, written from the
 * formats' specs) against metrics.jsonl lines as runs write them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MetricsLog } from "../../sinks/metrics.js";
import {
  crc32c,
  maskedCrc32c,
  metricsToTensorboard,
  TensorboardError,
  TensorboardWriter,
  tfRecordFrame,
} from "../../sinks/tensorboard.js";
import {
  crc32cBitwise,
  eventFiles,
  masked,
  readEventFile,
  readFrames,
  scalarTable,
} from "./tfevents-reader.js";

// ---------------------------------------------------------------------------------------------------------------
// A metrics.jsonl as a run writes it (pipeline/pretrain.ts, sinks/training-loop.ts, pipeline/evaluate.ts).

const t0 = Date.parse("2026-12-03T08:00:00.000Z");
const at = (seconds: number) => new Date(t0 + seconds * 1000).toISOString();

function stepLine(step: number): Record<string, unknown> {
  return {
    time: at(step * 1.5),
    event: "step",
    step,
    loss: 9.5 - step * 0.731,
    nce: 4.8 - step * 0.3,
    milNce: 4.7 - step * 0.431,
    lr: 1e-4 * Math.min(1, step / 3),
    gradNorm: 12.345678 / step,
    examplesPerSecond: 3.3333333,
    dataWaitShare: 0.125,
    skippedExamples: step > 2 ? 1 : 0,
    skippedSteps: step > 4 ? 1 : 0,
    elapsedSeconds: step * 1.5,
    tensors: 412,
    rssMB: 830 + step,
  };
}

function figures(n: number, r1: number): Record<string, unknown> {
  return {
    queries: n,
    "R@1": r1,
    "R@5": 0.5,
    "R@10": 0.875,
    medianRank: 3.5,
    chance: { "R@1": 1 / n, "R@5": 5 / n, "R@10": 10 / n, medianRank: (n + 1) / 2 },
  };
}

const evalLine = {
  time: at(7),
  event: "eval",
  step: 4,
  preset: "tiny",
  windows: 4,
  items: { textToVideo: 16, videoAudio: 15, skipped: 1 },
  textToVideo: figures(16, 0.1875),
  videoToAudio: figures(15, 0.2),
  audioToVideo: figures(15, 0.13333),
  seconds: 12.75,
};

/** The tags the eval line above must give, written out by hand. */
function expectedEvalScalars(): Record<string, number> {
  const out: Record<string, number> = {
    "eval/items/textToVideo": 16,
    "eval/items/videoAudio": 15,
    "eval/items/skipped": 1,
    "eval/seconds": 12.75,
  };
  for (const [direction, n, r1] of [
    ["textToVideo", 16, 0.1875],
    ["videoToAudio", 15, 0.2],
    ["audioToVideo", 15, 0.13333],
  ] as const) {
    Object.assign(out, {
      [`eval/${direction}/queries`]: n,
      [`eval/${direction}/R@1`]: r1,
      [`eval/${direction}/R@5`]: 0.5,
      [`eval/${direction}/R@10`]: 0.875,
      [`eval/${direction}/medianRank`]: 3.5,
      [`eval-chance/${direction}/R@1`]: 1 / n,
      [`eval-chance/${direction}/R@5`]: 5 / n,
      [`eval-chance/${direction}/R@10`]: 10 / n,
      [`eval-chance/${direction}/medianRank`]: (n + 1) / 2,
    });
  }
  return out;
}

const STEP_TAG: Record<string, string> = {
  loss: "train/loss",
  nce: "train/nce",
  milNce: "train/milNce",
  lr: "train/lr",
  gradNorm: "train/gradNorm",
  examplesPerSecond: "speed/examplesPerSecond",
  dataWaitShare: "speed/dataWaitShare",
  elapsedSeconds: "speed/elapsedSeconds",
  skippedExamples: "skips/examples",
  skippedSteps: "skips/steps",
  tensors: "memory/tensors",
  rssMB: "memory/rssMB",
};

/** Lines of a run: start, steps 1-5 with a checkpoint, an eval and a skipped step among them, the end, a cut line. */
function metricsLines(): string[] {
  const lines: Record<string, unknown>[] = [
    { time: at(0), event: "start", step: 0, backend: "wasm", preset: "tiny", params: 123456, vocab: 64 },
    stepLine(1),
    stepLine(2),
    {
      time: at(3.2),
      event: "skipped-step",
      step: 2,
      reason: "non-finite loss",
      loss: "NaN",
      ids: ["a", "b"],
    },
    stepLine(3),
    { time: at(4.6), event: "checkpoint", step: 3, dir: "runs/x/checkpoints/step-000000003" },
    stepLine(4),
    evalLine,
    stepLine(5),
    { time: at(9), event: "end", step: 5, examples: 40, seconds: 9, ended: "steps", skips: { decode: 1 } },
  ];
  return [
    ...lines.map((l) => JSON.stringify(l)),
    `{"time":"${at(10)}","event":"step","step":6,"loss":2.1,"nce":1.`, // cut by a crash
  ];
}

/** Every tag, step, value and wall time the lines above must give. */
function expectedScalars(): { tag: string; step: number; value: number; wallTime: number }[] {
  const out: { tag: string; step: number; value: number; wallTime: number }[] = [];
  for (let step = 1; step <= 5; step++) {
    const line = stepLine(step);
    for (const [key, tag] of Object.entries(STEP_TAG)) {
      out.push({ tag, step, value: line[key] as number, wallTime: Date.parse(line.time as string) / 1000 });
    }
  }
  for (const [tag, value] of Object.entries(expectedEvalScalars())) {
    out.push({ tag, step: 4, value, wallTime: Date.parse(evalLine.time) / 1000 });
  }
  return out;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-tensorboard-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("CRC-32C", () => {
  it("gives the known check values (RFC 3720 B.4 and the '123456789' check)", () => {
    const ascii = (s: string) => new TextEncoder().encode(s);
    const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
    const vectors: [Uint8Array, number][] = [
      [ascii("123456789"), 0xe3069283],
      [new Uint8Array(0), 0],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [ascending, 0x46dd794e],
      [ascending.slice().reverse(), 0x113fdb5c],
    ];
    for (const [bytes, crc] of vectors) {
      assert.equal(crc32c(bytes), crc, `writer's CRC of ${bytes.length} bytes`);
      assert.equal(crc32cBitwise(bytes), crc, `reader's CRC of ${bytes.length} bytes`);
    }
  });

  it("agrees with the bitwise CRC and the mask formula on random bytes", () => {
    for (let n = 0; n < 200; n++) {
      const bytes = randomBytes(n * 7);
      assert.equal(crc32c(bytes), crc32cBitwise(bytes));
      assert.equal(maskedCrc32c(bytes), masked(bytes));
    }
  });
});

describe("TFRecord frames", () => {
  it("frame data the reader takes back, and a changed byte anywhere fails a CRC", () => {
    const data = randomBytes(300);
    const frame = tfRecordFrame(data);
    assert.equal(frame.length, 8 + 4 + 300 + 4);
    assert.deepEqual(readFrames(frame), [data]);
    for (const [offset, what] of [
      [0, /length CRC/],
      [9, /length CRC/],
      [12 + 150, /data CRC/],
      [frame.length - 1, /data CRC/],
    ] as const) {
      const bad = Buffer.from(frame);
      bad[offset] ^= 0x10;
      assert.throws(() => readFrames(bad), what, `byte ${offset} changed`);
    }
  });
});

describe("metrics.jsonl to TensorBoard", () => {
  it("writes every scalar of every step and eval line, with its step and time, and nothing else", async () => {
    const runDir = join(dir, "convert");
    await mkdir(runDir);
    await writeFile(join(runDir, "metrics.jsonl"), `${metricsLines().join("\n")}\n`);
    const result = metricsToTensorboard(runDir);
    assert.deepEqual(result.skippedLines, [11]);
    assert.equal(result.lines, 11);
    assert.equal(result.events, 6); // 5 step lines, 1 eval line
    const expected = expectedScalars();
    assert.equal(result.scalars, expected.length);

    const files = await eventFiles(runDir);
    assert.equal(files.length, 1);
    assert.equal(join(runDir, files[0]), result.file);
    assert.match(files[0], /^events\.out\.tfevents\.\d{10}\.[^/]+$/);
    const events = await readEventFile(result.file!);
    assert.equal(events[0].fileVersion, "brain.Event:2");
    // A session start precedes the first scalars, at their step.
    assert.deepEqual({ step: events[1].step, status: events[1].sessionStatus }, { step: 1, status: 1 });
    const table = scalarTable(events);
    let found = 0;
    for (const x of expected) {
      const got = table.get(x.tag)?.get(x.step);
      assert.ok(got, `${x.tag} at step ${x.step} is missing`);
      assert.equal(got.value, Math.fround(x.value), `${x.tag} at step ${x.step}`);
      assert.equal(got.wallTime, x.wallTime, `${x.tag} wall time`);
      found++;
    }
    const written = [...table.values()].reduce((n, s) => n + s.size, 0);
    assert.equal(written, found, "scalars beyond those of the step and eval lines");
    assert.ok(!events.some((e) => e.step === 6), "the cut line gave nothing");
  });

  it("a changed byte in the event file fails the reader's CRC check", async () => {
    const runDir = join(dir, "convert");
    const [name] = await eventFiles(runDir);
    const bytes = await readFile(join(runDir, name));
    assert.doesNotThrow(() => readFrames(bytes));
    const bad = Buffer.from(bytes);
    bad[Math.floor(bad.length / 2)] ^= 0x01;
    assert.throws(() => readFrames(bad), /CRC mismatch/);
  });

  it("refuses a folder that already holds event files, and a run without metrics.jsonl", async () => {
    assert.throws(() => metricsToTensorboard(join(dir, "convert")), TensorboardError);
    assert.throws(() => metricsToTensorboard(join(dir, "convert"), join(dir, "convert")), /already holds/);
    assert.throws(() => metricsToTensorboard(join(dir, "nowhere")), /cannot read .*metrics\.jsonl/);
  });

  it("marks a resumed session, whose repeated steps supersede the earlier ones", async () => {
    const runDir = join(dir, "resumed");
    await mkdir(runDir);
    const lines = [
      { time: at(0), event: "start", step: 0 },
      stepLine(1),
      stepLine(2),
      stepLine(3),
      { time: at(20), event: "resume", step: 2 },
      { ...stepLine(3), time: at(21), loss: 1.25 },
    ];
    await writeFile(join(runDir, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n"));
    const events = await readEventFile(metricsToTensorboard(runDir).file!);
    const starts = events.filter((e) => e.sessionStatus === 1).map((e) => e.step);
    assert.deepEqual(starts, [1, 3]);
    // The second start comes right before the repeated step 3.
    const i = events.findIndex((e, k) => k > 2 && e.sessionStatus === 1);
    assert.equal(events[i + 1].step, 3);
    assert.equal(events[i + 1].values?.find((v) => v.tag === "train/loss")?.simpleValue, 1.25);
  });
});

describe("TensorboardWriter", () => {
  it("leaves out non-numbers and values that are not finite as float32", async () => {
    const out = join(dir, "finite");
    await mkdir(out);
    const writer = new TensorboardWriter(out);
    writer.scalars(
      3,
      { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, huge: 1e40, text: "x", ok: 0.1 },
      1234.5,
    );
    writer.scalars(4, { nan: Number.NaN }, 1235); // nothing storable: nothing written
    const events = await readEventFile(writer.file!);
    const scalars = events.filter((e) => e.values);
    assert.equal(scalars.length, 1);
    assert.deepEqual(scalars[0], {
      wallTime: 1234.5,
      step: 3,
      values: [{ tag: "ok", simpleValue: Math.fround(0.1) }],
    });
  });

  it("writes nothing, not even a file, until there is a scalar", async () => {
    const out = join(dir, "empty");
    await mkdir(out);
    const writer = new TensorboardWriter(out);
    writer.metricsLine({ time: at(0), event: "start", step: 0 });
    writer.metricsLine({ time: at(1), event: "checkpoint", step: 1, dir: "x" });
    assert.equal(writer.file, undefined);
    assert.deepEqual(await eventFiles(out), []);
  });
});

describe("MetricsLog", () => {
  it("writes event files beside metrics.jsonl as it goes, a new one per process", async () => {
    const runDir = join(dir, "live");
    await mkdir(runDir);
    const first = new MetricsLog(join(runDir, "metrics.jsonl"));
    first.write({ event: "start", step: 0, backend: "wasm" });
    for (let step = 1; step <= 3; step++) {
      const { time: _, ...line } = stepLine(step);
      first.write(line);
    }
    const { time: _t, ...evaluation } = evalLine;
    first.write({ ...evaluation, step: 3 });
    assert.equal((await eventFiles(runDir)).length, 1, "the first event file is there while the run goes on");

    // A resumed process in the same second: another file, never an append to the first.
    const second = new MetricsLog(join(runDir, "metrics.jsonl"));
    second.write({ event: "resume", step: 3 });
    const { time: _u, ...line4 } = stepLine(4);
    second.write(line4);
    const files = await eventFiles(runDir);
    assert.equal(files.length, 2);

    // What the live files hold is what metrics.jsonl holds.
    const lines = (await readFile(join(runDir, "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const live = scalarTable((await Promise.all(files.map((f) => readEventFile(join(runDir, f))))).flat());
    let count = 0;
    for (const l of lines.filter((x) => x.event === "step")) {
      for (const [key, tag] of Object.entries(STEP_TAG)) {
        assert.equal(live.get(tag)?.get(l.step)?.value, Math.fround(l[key]), `${tag} at ${l.step}`);
        assert.equal(live.get(tag)?.get(l.step)?.wallTime, Date.parse(l.time) / 1000);
        count++;
      }
    }
    for (const [tag, value] of Object.entries(expectedEvalScalars())) {
      assert.equal(live.get(tag)?.get(3)?.value, Math.fround(value), tag);
      count++;
    }
    assert.equal(
      [...live.values()].reduce((n, s) => n + s.size, 0),
      count,
    );

    // A conversion of the same metrics.jsonl elsewhere gives the same scalars.
    const elsewhere = join(dir, "live-converted");
    await mkdir(elsewhere);
    const converted = scalarTable(await readEventFile(metricsToTensorboard(runDir, elsewhere).file!));
    assert.deepEqual(converted, live);
  });

  it("can be told not to write event files", async () => {
    const runDir = join(dir, "no-events");
    await mkdir(runDir);
    new MetricsLog(join(runDir, "metrics.jsonl"), { tensorboard: false }).write({
      event: "step",
      step: 1,
      loss: 1,
    });
    assert.deepEqual(await eventFiles(runDir), []);
  });
});
