/** The soak's assertions (bin/soak/checks.ts) are pure functions: judged here on made-up records. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  badSkipKeys,
  badSkipLines,
  checkCheckpoints,
  checkExactResume,
  checkResumes,
  median,
  type ResourceSample,
  trendOf,
} from "../../bin/soak/checks.js";

const sample = (t: number, rssMB: number, fds = 20): ResourceSample => ({
  t,
  rssMB,
  fds,
  threads: 12,
  children: 2,
  tmpEntries: 0,
  shmEntries: 1,
});
const options = { warmupSeconds: 60, minSamples: 8, relative: 0.2, absolute: 10 };

describe("soak checks", () => {
  it("median", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it("a flat (noisy) series passes, warm-up growth is ignored", () => {
    const xs = Array.from({ length: 60 }, (_, i) =>
      sample(i * 3, i < 20 ? 100 + i * 10 : 300 + ((i * 7) % 5)),
    );
    const t = trendOf(xs, "rssMB", options);
    assert.ok(t.judged && t.ok, JSON.stringify(t));
  });

  it("steady growth after warm-up fails", () => {
    const xs = Array.from({ length: 60 }, (_, i) => sample(i * 3, 300 + i * 4));
    const t = trendOf(xs, "rssMB", options);
    assert.ok(t.judged);
    assert.equal(t.ok, false);
  });

  it("an absolute tolerance covers small counts (fds 20 -> 24 with 6 allowed)", () => {
    const xs = Array.from({ length: 40 }, (_, i) => sample(60 + i * 3, 300, i < 20 ? 20 : 24));
    assert.ok(trendOf(xs, "fds", { ...options, relative: 0, absolute: 6 }).ok);
    assert.equal(trendOf(xs, "fds", { ...options, relative: 0, absolute: 2 }).ok, false);
  });

  it("a short life is not judged and passes", () => {
    const t = trendOf([sample(70, 100), sample(73, 900)], "rssMB", options);
    assert.equal(t.judged, false);
    assert.ok(t.ok);
  });

  it("samples without a value (tensors before the first step line) are left out", () => {
    const xs = Array.from({ length: 20 }, (_, i) => ({
      ...sample(60 + i, 1),
      ...(i > 4 ? { tensors: 360 } : {}),
    }));
    const t = trendOf(xs, "tensors", { ...options, relative: 0, absolute: 0 });
    assert.ok(t.judged && t.ok && t.first === 360);
  });

  it("resumes: the metrics event and the printed line must both say the expected step", () => {
    assert.ok(checkResumes([{ life: 2, expectedStep: 400, resumedStep: 400, printedStep: 400 }]).ok);
    assert.equal(checkResumes([{ life: 2, expectedStep: 400, resumedStep: 200 }]).ok, false);
    assert.equal(checkResumes([{ life: 2, expectedStep: 400 }]).ok, false);
    assert.equal(
      checkResumes([{ life: 2, expectedStep: 400, resumedStep: 400, printedStep: 399 }]).ok,
      false,
    );
    assert.ok(checkResumes([]).ok);
  });

  it("checkpoints: rotated ones are neither good nor bad; one bad fails; none read fails", () => {
    assert.ok(
      checkCheckpoints([
        { step: 1, ok: true },
        { step: 2, ok: false, gone: true },
      ]).ok,
    );
    assert.equal(
      checkCheckpoints([
        { step: 1, ok: true },
        { step: 2, ok: false, error: "x" },
      ]).ok,
      false,
    );
    assert.equal(checkCheckpoints([{ step: 2, ok: false, gone: true }]).ok, false);
  });

  it("exact resume: bit-equal losses on the common steps", () => {
    const ref = new Map([
      [1, 0.5],
      [2, 0.25],
      [3, 0.125],
    ]);
    assert.ok(
      checkExactResume(
        ref,
        new Map([
          [2, 0.25],
          [3, 0.125],
        ]),
      ).ok,
    );
    assert.equal(checkExactResume(ref, new Map([[3, 0.12500001]])).ok, false);
    assert.equal(checkExactResume(ref, new Map([[7, 1]])).ok, false);
  });

  it("skip keys need where:reason, neither empty nor unknown; skip lines need a message", () => {
    assert.deepEqual(
      badSkipKeys([
        "decode:corrupt",
        "audioset:x.csv:bad-row",
        ":x",
        "decode:",
        "unknown:x",
        "a:Unknown",
        "plain",
      ]),
      [":x", "decode:", "unknown:x", "a:Unknown", "plain"],
    );
    assert.deepEqual(
      badSkipLines([
        "vatt: skipped: clips/a.mp4: corrupt",
        "vatt: skipped: ",
        "vatt: skipped: undefined",
        "other",
      ]),
      ["vatt: skipped: ", "vatt: skipped: undefined"],
    );
  });
});
