import assert from "node:assert/strict";
import { test } from "node:test";
import { modelInfoCommand } from "../../bin/commands/model-info.js";
import { presetConfig, withOverrides } from "../../model/config.js";
import {
  inferenceFlops,
  modelInfoReport,
  videoBackboneParams,
  wasmTrainingMemoryProblem,
} from "../../model/info.js";

function preset(name: string) {
  const c = presetConfig(name);
  assert.ok(c, name);
  return c;
}

function within(actual: number, expected: number, tolerance: number, what: string): void {
  const rel = Math.abs(actual - expected) / expected;
  assert.ok(rel <= tolerance, `${what}: ${actual.toFixed(1)} vs ${expected} (${(rel * 100).toFixed(2)} %)`);
}

test("video backbones have the reference's exact parameter counts", () => {
  assert.equal(videoBackboneParams(preset("BBS")), 87_446_016);
  assert.equal(videoBackboneParams(preset("MBS")), 154_343_424);
  assert.equal(videoBackboneParams(preset("LBS")), 305_498_112);
});

test("a 600-way classifier gives the paper's Table 1 figures", () => {
  const expected: [string, number][] = [
    ["BBS", 87.9],
    ["MBS", 155.0],
    ["LBS", 306.1],
  ];
  for (const [name, millions] of expected) {
    const r = modelInfoReport(preset(name), 0, 600);
    assert.equal(Math.round(r.videoBackboneWithClassifierParams / 1e5) / 10, millions, name);
  }
});

test("Medium video GFLOPs match the paper within 2 %", () => {
  const mbs = preset("MBS");
  within(inferenceFlops(mbs).video / 1e9, 548.1, 0.02, "32x224x224");
  const big = withOverrides(mbs, { videoGeometry: { height: 320, width: 320 } });
  within(inferenceFlops(big).video / 1e9, 1252.3, 0.02, "32x320x320");
});

test("MBS multimodal GFLOPs follow Table 13 over DropToken rates within 3 %", () => {
  const table: [number, number][] = [
    [0.75, 188.1],
    [0.5, 375.4],
    [0.25, 574.2],
    [0, 784.8],
  ];
  for (const [rate, gflops] of table)
    within(inferenceFlops(preset("MBS"), rate).total / 1e9, gflops, 0.03, `rate ${rate}`);
});

test("token counts include the aggregation token and DropToken's int((1-r)N)", () => {
  const f = inferenceFlops(preset("MBS"), 0.5);
  assert.deepEqual(f.tokens, { video: 785, audio: 601, text: 17 });
});

test("vatt model-info --json prints the report", async () => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    const code = await modelInfoCommand.run({
      values: { preset: "mbs", video: "32x224x224", "drop-rate": "0.5", classes: "600", json: true },
      positionals: [],
    });
    assert.equal(code, 0);
  } finally {
    console.log = original;
  }
  const report = JSON.parse(lines.join("\n"));
  assert.equal(report.preset, "MBS");
  assert.equal(report.videoBackboneParams, 154_343_424);
  within(report.gflops.total, 375.4, 0.03, "MBS 50 %");
});

test("model-info rejects an unknown preset and a bad --video", async () => {
  await assert.rejects(
    () => modelInfoCommand.run({ values: { preset: "huge" }, positionals: [] }),
    /unknown preset/,
  );
  await assert.rejects(
    () => modelInfoCommand.run({ values: { preset: "MBS", video: "32x225x224" }, positionals: [] }),
    /multiple of its patch/,
  );
});

test("a preset too large for the wasm heap is refused with what to do, before anything is allocated", () => {
  const bbs = presetConfig("BBS");
  const tiny = presetConfig("tiny");
  assert.ok(bbs && tiny);
  assert.match(
    wasmTrainingMemoryProblem(bbs, "wasm") ?? "",
    /preset BBS \(\d+ M parameters\) needs [\d.]+ GiB .* --backend node/,
  );
  assert.equal(wasmTrainingMemoryProblem(bbs, "tensorflow"), undefined);
  assert.equal(wasmTrainingMemoryProblem(tiny, "wasm"), undefined);
});
