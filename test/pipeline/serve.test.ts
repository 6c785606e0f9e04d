/**
 * The web view's server without a browser: downsampling, reading a growing metrics.jsonl, a 1M-line run, files
 * only under the roots (`..`, `%2e%2e`, symlinks), range requests, a port in use, and `vatt report`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { writeReport } from "../../pipeline/report.js";
import { type RunningServer, startServer } from "../../pipeline/serve/app.js";
import { downsample, readLinesFrom, StepColumns, updateColumns } from "../../pipeline/serve/metrics-file.js";
import { readRun } from "../../pipeline/serve/runs.js";
import { writeEmbeddings } from "../../sinks/embed-writer.js";
import { solidPng, writeFakeRun } from "./serve-fixtures.js";

let dir: string;
let runs: string;
let server: RunningServer;

/** GET with the path sent exactly as given (fetch would resolve `..` before sending). */
function rawGet(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ hostname, port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
      );
    });
    req.on("error", fail);
    req.end();
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vatt-serve-"));
  runs = join(dir, "runs");
  await writeFakeRun(join(runs, "a"), { steps: 120, evalEvery: 40 });
  await mkdir(join(dir, "outside"));
  await writeFile(join(dir, "outside", "secret.txt"), "secret\n");
  await symlink(join(dir, "outside", "secret.txt"), join(runs, "a", "link-out.txt"));
  await symlink(join(runs, "a", "loss.png"), join(runs, "a", "link-in.png"));
  server = await startServer({ runs, port: 0, pollSeconds: 0.05 });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("downsample", () => {
  it("keeps each bucket's min, max and last, so a spike survives", () => {
    const n = 10_007;
    const steps = Array.from({ length: n }, (_, i) => i + 1);
    const values = steps.map((s) => Math.sin(s / 100) + (s === 5003 ? 50 : 0));
    values[17] = Number.NaN;
    const d = downsample(steps, values, 100);
    assert.ok(d.step.length <= 100, `${d.step.length} buckets`);
    assert.equal(d.points, n - 1);
    assert.equal(Math.max(...d.max), 50 + Math.sin(50.03));
    assert.equal(d.step.at(-1), n);
    assert.equal(d.last.at(-1), values[n - 1]);
    const finite = values.filter(Number.isFinite);
    assert.equal(Math.min(...d.min), Math.min(...finite));
    // each bucket's last is the value at the bucket's step
    for (let b = 0; b < d.step.length; b++) assert.equal(d.last[b], values[d.step[b] - 1]);
  });
});

describe("reading a growing metrics.jsonl", () => {
  it("waits for a cut line's newline and passes over a corrupt line", async () => {
    const file = join(dir, "grow.jsonl");
    await writeFile(file, '{"event":"step","step":1,"loss":3}\n{"event":"step","st');
    const first = await readLinesFrom(file, 0);
    assert.equal(first.records.length, 1);
    assert.equal(first.offset, Buffer.byteLength('{"event":"step","step":1,"loss":3}\n'));
    await appendFile(file, 'ep":2,"loss":2.5}\nnot json at all\n{"event":"step","step":3,"loss":2}\n');
    const second = await readLinesFrom(file, first.offset);
    assert.deepEqual(
      second.records.map((r) => r.step),
      [2, 3],
    );
    assert.equal(second.badLines, 1);
    const cols = await updateColumns(file, new StepColumns());
    assert.deepEqual(cols.steps, [1, 2, 3]);
    assert.deepEqual(cols.series.get("loss"), [3, 2.5, 2]);
    await writeFile(file, '{"event":"step","step":1,"loss":9}\n'); // rewritten from the start
    const again = await updateColumns(file, cols);
    assert.deepEqual(again.steps, [1]);
  });
});

describe("a run with a million logged steps", () => {
  it("is served downsampled to ~2k points per curve, quickly, with the true last and extreme values", async () => {
    const run = join(runs, "huge");
    await mkdir(run);
    const file = join(run, "metrics.jsonl");
    const out = createWriteStream(file);
    const n = 1_000_000;
    let maxLoss = Number.NEGATIVE_INFINITY;
    let lastLoss = 0;
    const generateStart = performance.now();
    // Lines as the training loop writes them; numbers kept short so that making 1M of them takes little time.
    const lossAt = (step: number) => (step === 654_321 ? 9 : 0.5 + ((step * 7919) % 1000) / 1000);
    for (let base = 1; base <= n; base += 20_000) {
      const lines: string[] = [];
      for (let step = base; step < base + 20_000 && step <= n; step++) {
        const loss = lossAt(step);
        lines.push(
          `{"time":"2026-01-01T00:00:00.000Z","event":"step","step":${step},"loss":${loss},"nce":0.25,` +
            `"milNce":0.75,"lr":0.0001,"gradNorm":1.25,"examplesPerSecond":41.5,"dataWaitShare":0.125,` +
            `"skippedExamples":0,"skippedSteps":0,"elapsedSeconds":${step},"tensors":812,"rssMB":900}\n`,
        );
      }
      if (!out.write(lines.join(""))) await once(out, "drain");
    }
    for (let step = 1; step <= n; step++) maxLoss = Math.max(maxLoss, lossAt(step));
    lastLoss = lossAt(n);
    out.end();
    await once(out, "finish");
    const generateSeconds = (performance.now() - generateStart) / 1000;
    let t = performance.now();
    const first = await fetch(`${server.url}/api/run?id=huge`);
    const body = (await first.json()) as {
      curves: Record<string, { step: number[]; last: number[]; max: number[]; points: number }>;
      last: Record<string, number>;
    };
    const firstMs = performance.now() - t;
    // requests at once read the new lines once (no step counted twice)
    await appendFile(file, `{"event":"step","step":${n + 1},"loss":0.5}\n`);
    const together = (await Promise.all(
      [1, 2, 3].map(async () => (await fetch(`${server.url}/api/run?id=huge`)).json()),
    )) as { curves: { loss: { points: number } } }[];
    for (const r of together) assert.equal(r.curves.loss.points, n + 1);
    t = performance.now();
    const second = await fetch(`${server.url}/api/run?id=huge`);
    const secondText = await second.text();
    const secondMs = performance.now() - t;
    const loss = body.curves.loss;
    assert.equal(loss.points, n);
    assert.ok(loss.step.length <= 2000 && loss.step.length >= 1000, `${loss.step.length} points`);
    assert.equal(loss.step.at(-1), n);
    assert.equal(loss.last.at(-1), lastLoss);
    assert.equal(Math.max(...loss.max), maxLoss);
    assert.equal(body.last.loss, lastLoss);
    // the first bucket's last value is the loss at its last step (buckets of consecutive points)
    assert.equal(loss.last[0], lossAt(loss.step[0]));
    console.log(
      `1M-line metrics.jsonl: generated in ${generateSeconds.toFixed(1)} s; first /api/run ${firstMs.toFixed(0)} ms, ` +
        `next ${secondMs.toFixed(0)} ms, response ${(secondText.length / 1024).toFixed(0)} kB`,
    );
    assert.ok(secondMs < 2000, `a repeated request took ${secondMs} ms`);
    assert.ok(secondText.length < 3_000_000, `response ${secondText.length} bytes`);
    await rm(run, { recursive: true, force: true });
  });
});

describe("files only under the roots", () => {
  it("serves a run's image, and 404s for .., %2e%2e, an encoded slash and a symlink out of the root", async () => {
    const png = await rawGet(server.url, "/files/runs/a/loss.png");
    assert.equal(png.status, 200);
    assert.deepEqual(png.body, await readFile(join(runs, "a", "loss.png")));
    assert.equal((await rawGet(server.url, "/files/runs/a/link-in.png")).status, 200);
    for (const path of [
      "/files/runs/a/../../outside/secret.txt",
      "/files/runs/a/%2e%2e/%2e%2e/outside/secret.txt",
      "/files/runs/a/%2E%2E/%2E%2E/outside/secret.txt",
      "/files/runs/a%2F..%2F..%2Foutside/secret.txt",
      "/files/runs/..%2f..%2foutside/secret.txt",
      "/files/runs/a/link-out.txt",
      "/files/dataset/secret.txt",
      "/files/runs/a/missing.png",
      `/api/media?file=${encodeURIComponent(join(dir, "outside", "secret.txt"))}`,
      `/api/media?file=${encodeURIComponent("a/../../outside/secret.txt")}`,
      `/api/media?file=${encodeURIComponent(join(runs, "a", "link-out.txt"))}`,
      `/api/thumb?file=${encodeURIComponent(join(dir, "outside", "secret.txt"))}&t=0`,
      "/api/run?id=..%2Foutside",
      "/web/..%2F..%2Fpackage.json",
    ]) {
      const r = await rawGet(server.url, path);
      assert.equal(r.status, 404, `${path} gave ${r.status}`);
      assert.ok(!r.body.toString().includes("secret"), path);
    }
  });

  it("answers range requests with the bytes asked for", async () => {
    const whole = await readFile(join(runs, "a", "loss.png"));
    const r = await rawGet(server.url, "/files/runs/a/loss.png", { range: "bytes=10-29" });
    assert.equal(r.status, 206);
    assert.equal(r.headers["content-range"], `bytes 10-29/${whole.length}`);
    assert.deepEqual(r.body, whole.subarray(10, 30));
    const tail = await rawGet(server.url, "/files/runs/a/loss.png", { range: "bytes=-5" });
    assert.deepEqual(tail.body, whole.subarray(whole.length - 5));
    assert.equal((await rawGet(server.url, "/files/runs/a/loss.png", { range: "bytes=99999-" })).status, 416);
  });
});

describe("starting the server", () => {
  it("binds 127.0.0.1 by default", () => {
    const address = server.server.address();
    assert.ok(address && typeof address === "object");
    assert.equal(address.address, "127.0.0.1");
  });

  it("says which port is in use and suggests another", async () => {
    const port = Number(new URL(server.url).port);
    await assert.rejects(
      startServer({ runs, port }),
      (err: Error) =>
        err.message.includes(`port ${port} on 127.0.0.1 is already in use`) &&
        err.message.includes(`--port ${port + 1}`),
    );
    const { stderr } = await promisify(execFile)(
      process.execPath,
      ["dist/bin/vatt.js", "serve", "--runs", runs, "--port", String(port)],
      { timeout: 20_000 },
    ).catch((e: { stderr: string; code: number }) => {
      assert.equal(e.code, 1);
      return e;
    });
    assert.match(stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*--port ${port + 1}`));
  });

  it("names a runs folder that does not exist", async () => {
    await assert.rejects(
      startServer({ runs: join(dir, "nope"), port: 0 }),
      /runs folder '.*nope' does not exist/,
    );
  });
});

describe("runs with problems", () => {
  it("shows a half-written run as corrupt and still reads its good lines", async () => {
    const bad = join(runs, "bad");
    await mkdir(bad);
    await writeFile(join(bad, "config.json"), '{"seed": 1, "tra');
    await writeFile(
      join(bad, "metrics.jsonl"),
      '{"event":"step","step":1,"loss":2}\n\u0000\u0000garbage\n{"event":"st',
    );
    const list = (await (await fetch(`${server.url}/api/runs`)).json()) as {
      runs: { id: string; status: string; problems: { message: string }[] }[];
    };
    const byId = new Map(list.runs.map((r) => [r.id, r]));
    assert.equal(byId.get("bad")?.status, "corrupt");
    assert.match(
      byId
        .get("bad")!
        .problems.map((p) => p.message)
        .join("\n"),
      /config\.json is not valid JSON/,
    );
    assert.equal(byId.get("a")?.status, "ok");
    const { view } = await readRun(runs, "bad");
    assert.equal(view.last?.loss, 2);
    assert.equal(view.badLines, 1);
    await rm(bad, { recursive: true, force: true });
  });
});

describe("the skip table", () => {
  it("says what each count is made of and lists retired files", async () => {
    const run = join(runs, "skips");
    await mkdir(run);
    const end = {
      event: "end",
      step: 9,
      skips: { "howto100m:HowTo100M_v1.csv:bad-row": 16, "decode:invalid": 3 },
      skipTallies: {
        "howto100m:HowTo100M_v1.csv:bad-row": {
          count: 16,
          items: 1,
          passes: { min: 16, max: 16 },
          unit: "line",
        },
        "decode:invalid": { count: 3, items: 1, passes: { min: 3, max: 3 }, unit: "file" },
      },
      retired: [{ file: "/v/bad.mp4", reason: "invalid", passes: [0, 1, 2], fromPass: 3, rule: "passes" }],
    };
    await writeFile(join(run, "metrics.jsonl"), `${JSON.stringify(end)}\n`);
    const { view } = await readRun(runs, "skips");
    assert.deepEqual(
      view.skips.map((r) => [r.where, r.reason, r.count, r.detail]),
      [
        ["howto100m:HowTo100M_v1.csv", "bad-row", 16, "1 line, seen in 16 passes"],
        ["decode", "invalid", 3, "1 file, seen in 3 passes"],
        ["retired file", "invalid", 1, "/v/bad.mp4: failed in passes 0, 1, 2; not asked for from pass 3 on"],
      ],
    );
    await rm(run, { recursive: true, force: true });
  });
});

describe("vatt report", () => {
  it("writes one self-contained HTML file with the run's figures", async () => {
    await writeFile(join(runs, "a", "sheet.png"), await solidPng(40, 20, [10, 200, 10]));
    const rows = 12;
    const vectors = (k: number) =>
      Float32Array.from({ length: rows * 8 }, (_, i) => Math.sin(i * k + (i % 8)));
    const one = async function* () {
      yield {
        ids: Array.from({ length: rows }, (_, i) => `v${i}`),
        sources: Array.from({ length: rows }, () => "howto100m"),
        clips: Array.from({ length: rows }, () => 0),
        starts: Array.from({ length: rows }, () => 0),
        ends: Array.from({ length: rows }, () => 3.2),
        vectors: { video_vt: vectors(1.3), text_vt: vectors(1.7) },
      };
    };
    await writeEmbeddings(join(runs, "a", "embeddings.arrow"), { video_vt: 8, text_vt: 8 }, one());
    const out = join(dir, "report.html");
    const { stdout } = await promisify(execFile)(process.execPath, [
      "dist/bin/vatt.js",
      "report",
      join(runs, "a"),
      "--out",
      out,
    ]);
    assert.match(stdout, /wrote .*report\.html/);
    const html = await readFile(out, "utf8");
    const lines = (await readFile(join(runs, "a", "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    const lastStep = lines.filter((l) => l.event === "step").at(-1)!;
    const evalJson = JSON.parse(await readFile(join(runs, "a", "eval.json"), "utf8"));
    assert.ok(html.includes(`<dd>${(lastStep.loss as number).toFixed(4)}</dd>`));
    assert.ok(html.includes((evalJson.textToVideo["R@10"] as number).toFixed(3)));
    const png = await readFile(join(runs, "a", "sheet.png"));
    assert.ok(html.includes(`data:image/png;base64,${png.toString("base64")}`));
    assert.ok((html.match(/<svg /g) ?? []).length >= 5);
    assert.ok(html.includes('data-series="loss"'));
    assert.ok(html.includes("decode") && html.includes("corrupt"), "the skip table");
    assert.equal((html.match(/class="pt" data-kind="video"/g) ?? []).length, rows, "one video point per row");
    assert.equal((html.match(/class="pt" data-kind="text"/g) ?? []).length, rows, "one text point per row");
    assert.match(html, /positive video-text pairs \(12 pairs\)/);
    // nothing fetched from elsewhere: no src/href to a URL, no script
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
    assert.doesNotMatch(html, /<script/);
    await assert.rejects(writeReport(join(dir, "nope"), join(dir, "r.html")), /does not exist/);
    await assert.rejects(writeReport(join(runs, "a"), join(dir, "r.txt")), /ending in \.html/);
  });
});

describe("evaluation figures", () => {
  it("reads retrieval reports and a transfer run's flat figures, each beside its chance level", async () => {
    const { evalFigures, evalCurves } = await import("../../pipeline/serve/runs.js");
    const retrieval = JSON.parse(await readFile(join(runs, "a", "eval.json"), "utf8"));
    const r10 = evalFigures(retrieval).find((f) => f.name === "textToVideo R@10")!;
    assert.deepEqual(r10, {
      name: "textToVideo R@10",
      value: retrieval.textToVideo["R@10"],
      chance: retrieval.textToVideo.chance["R@10"],
    });
    // finetune's eval.json and its eval line in metrics.jsonl
    const transfer = { figures: { top1: 0.5, top5: 0.9 }, chance: { top1: 0.125, top5: 0.625 }, videos: 40 };
    assert.deepEqual(evalFigures(transfer), [
      { name: "top1", value: 0.5, chance: 0.125 },
      { name: "top5", value: 0.9, chance: 0.625 },
    ]);
    const lines = [
      { event: "eval", step: 10, top1: 0.25, chance: { top1: 0.125 } },
      { event: "eval", step: 20, top1: 0.5, chance: { top1: 0.125 } },
    ];
    assert.deepEqual(evalCurves(lines), [
      { name: "top1", step: [10, 20], value: [0.25, 0.5], chance: [0.125, 0.125] },
    ]);
  });
});
