/**
 * The web view in a real browser (Debian's Chromium driven by playwright-core): the runs page shows the run's
 * real final figures, a curve grows while lines are appended to metrics.jsonl, two runs overlay, the map draws
 * one point per item, and a search for a concept's word finds that concept's window in real synthetic videos,
 * shows its frame and plays it. Screenshots go to the test's temp dir, and to docs/ when VATT_SCREENSHOTS=docs.
 * Without /usr/bin/chromium these tests are skipped (install it: apt-get install chromium).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { randomForRun } from "../../core/random.js";
import { type SynthTruth, synthesizeDataset } from "../../datasets/synth.js";
import { CONCEPTS } from "../../datasets/synth-concepts.js";
import { type RunningServer, type SearchHit, startServer } from "../../pipeline/serve/app.js";
import { type EmbeddingBatch, writeEmbeddings } from "../../sinks/embed-writer.js";
import { appendLines, stepLine, writeFakeRun } from "./serve-fixtures.js";

/** Debian's Chromium; VATT_CHROMIUM names another (or a missing one, to see the skip). */
const CHROMIUM = process.env.VATT_CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install it (apt-get install chromium) to run the browser tests`;
if (skip) console.log(`# skipped: ${skip}`);

// The page callbacks run in the browser; tsc compiles this file without DOM types, so name what they use.
// biome-ignore lint/suspicious/noExplicitAny: the browser's document
declare const document: any;
interface BrowserImage {
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
}
interface BrowserVideo {
  currentTime: number;
  dataset: Record<string, string | undefined>;
}

interface Window {
  file: string;
  start: number;
  end: number;
  concept: string;
}

/** Two-second windows over every synthetic video, each with the concept on screen at its middle. */
function windowsOf(truth: SynthTruth, root: string): Window[] {
  const out: Window[] = [];
  for (const v of truth.videos) {
    for (let start = 0; start + 2 <= v.duration; start += 2) {
      const mid = start + 1;
      const seg = v.segments.find((s) => s.start <= mid && mid < s.end);
      const concept = seg?.concepts.length ? truth.concepts[seg.concepts[0]] : "nothing";
      out.push({ file: join(root, v.file!), start, end: start + 2, concept });
    }
  }
  return out;
}

/**
 * A stand-in for the search index: a window scores high when the query names its concept (any of the concept's
 * words), lower the farther its middle is from the middle of that stretch; other windows score low.
 */
function fakeSearch(windows: Window[]): (text: string, k: number) => SearchHit[] {
  return (text, k) => {
    const words = new Set(text.toLowerCase().split(/\W+/));
    const named = new Set(CONCEPTS.filter((c) => c.words.some((w) => words.has(w))).map((c) => c.words[0]));
    return windows
      .map((w, i) => ({
        file: w.file,
        start: w.start,
        end: w.end,
        score: (named.has(w.concept) ? 0.8 : 0.2) - i * 1e-4,
      }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
  };
}

/** Embeddings clustered by concept, as a trained model would give: one row per window. */
async function writeClusteredEmbeddings(path: string, windows: Window[], truth: SynthTruth): Promise<void> {
  const dim = 16;
  const rng = randomForRun(5, "serve-browser:embeddings");
  const centres = new Map<string, number[]>();
  for (const c of [...truth.concepts, "nothing"])
    centres.set(
      c,
      Array.from({ length: dim }, () => rng.normal()),
    );
  const noisy = (c: string) => Float32Array.from(centres.get(c)!, (x) => x + 0.3 * rng.normal());
  const idOf = (file: string) => truth.videos.find((v) => file.endsWith(v.file!))!.id;
  const block = (f: (w: Window) => Float32Array) => {
    const out = new Float32Array(windows.length * dim);
    windows.forEach((w, i) => {
      out.set(f(w), i * dim);
    });
    return out;
  };
  const batch: EmbeddingBatch = {
    ids: windows.map((w) => idOf(w.file)),
    sources: windows.map((_, i) => (i % 3 === 0 ? "audioset" : "howto100m")),
    clips: windows.map((_, i) => i),
    starts: windows.map((w) => w.start),
    ends: windows.map((w) => w.end),
    vectors: {
      video_va: block((w) => noisy(w.concept)),
      video_vt: block((w) => noisy(w.concept)),
      audio_va: block((w) => noisy(w.concept)),
      text_vt: block((w) => noisy(w.concept)),
    },
  };
  const one = async function* () {
    yield batch;
  };
  await writeEmbeddings(path, { video_va: dim, video_vt: dim, audio_va: dim, text_vt: dim }, one());
}

describe("vatt serve in Chromium", { skip }, () => {
  let dir: string;
  let runs: string;
  let shots: string;
  let truth: SynthTruth;
  let windows: Window[];
  let server: RunningServer;
  let context: BrowserContext;
  let page: Page;
  const timings: string[] = [];
  const pageErrors: string[] = [];

  const screenshot = async (name: string) => {
    const path = join(shots, name);
    await page.screenshot({ path, fullPage: true });
    if (process.env.VATT_SCREENSHOTS === "docs") await copyFile(path, join("docs", name));
  };

  before(async () => {
    const started = performance.now();
    dir = await mkdtemp(join(tmpdir(), "vatt-serve-browser-"));
    runs = join(dir, "runs");
    shots = join(dir, "screenshots");
    await writeFakeRun(join(runs, "a"), { steps: 120, evalEvery: 40, seed: 1 });
    await writeFakeRun(join(runs, "b"), { steps: 90, evalEvery: 30, seed: 2, lossScale: 1.3 });
    await writeFakeRun(join(runs, "live"), { steps: 200, logEvery: 10, finished: false, seed: 3 });
    await mkdir(join(runs, "broken"));
    await writeFile(join(runs, "broken", "config.json"), '{"seed": 1, "tra');
    await writeFile(
      join(runs, "broken", "metrics.jsonl"),
      '{"event":"step","step":1,"loss":2.5}\n{"event":"st',
    );
    const data = join(dir, "data");
    truth = await synthesizeDataset({
      kind: "howto100m",
      out: data,
      videos: 3,
      seed: 3,
      width: 96,
      height: 64,
      fps: 10,
      minSeconds: 20,
      maxSeconds: 24,
    });
    windows = windowsOf(truth, data);
    await writeClusteredEmbeddings(join(runs, "a", "embeddings.arrow"), windows, truth);
    server = await startServer({
      runs,
      dataset: data,
      search: fakeSearch(windows),
      port: 0,
      pollSeconds: 0.1,
      cacheDir: join(dir, "cache"),
    });
    timings.push(`fixtures ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const launch = performance.now();
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (err) => pageErrors.push(err.message));
    timings.push(`chromium ${((performance.now() - launch) / 1000).toFixed(1)} s`);
  });

  after(async () => {
    console.log(`# browser test timings: ${timings.join(", ")}`);
    await context?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("shows a run's real final loss and R@10, its curves, skips and images", async () => {
    await page.goto(`${server.url}/#run=a`);
    await page.waitForSelector("body[data-ready=true]");
    const lines = (await readFile(join(runs, "a", "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>);
    const steps = lines.filter((l) => (l.event as unknown) === "step");
    const last = steps.at(-1)!;
    const evalJson = JSON.parse(await readFile(join(runs, "a", "eval.json"), "utf8"));
    const lossText = await page.textContent("#final-loss");
    assert.ok(Math.abs(Number(lossText) - last.loss) < 5e-5, `page ${lossText}, metrics.jsonl ${last.loss}`);
    assert.equal(await page.textContent("#final-step"), String(last.step));
    const r10 = await page.textContent("#final-r10");
    assert.equal(
      r10,
      `${evalJson.textToVideo["R@10"].toFixed(3)} chance ${evalJson.textToVideo.chance["R@10"].toFixed(3)}`,
    );
    assert.equal(
      await page.getAttribute('#charts polyline[data-series="loss"]', "data-points"),
      String(steps.length),
    );
    assert.ok(await page.$('#charts polyline[data-series="milNce"]'));
    assert.ok(await page.$('#eval-charts polyline[data-series="R@10 chance"]'));
    const row = await page.$$eval('#eval-table tr[data-figure="textToVideo R@10"] td', (tds) =>
      tds.map((td) => td.textContent),
    );
    assert.deepEqual(row.slice(1, 3), [
      evalJson.textToVideo["R@10"].toFixed(3),
      evalJson.textToVideo.chance["R@10"].toFixed(3),
    ]);
    const skipText = await page.textContent("#skips");
    assert.match(skipText!, /decode.*corrupt.*3/s);
    assert.match(skipText!, /non-finite loss.*1.*7/s);
    await page.waitForFunction(
      () => (document.querySelector("#images img") as BrowserImage)?.naturalWidth > 0,
    );
    assert.equal(await page.$eval("#images img", (img) => (img as BrowserImage).naturalWidth), 64);
    assert.match((await page.textContent("#config"))!, /"batchSize": 8/);
    await screenshot("serve-runs.png");
  });

  it("lists a half-written run as corrupt, says why, and still shows what it can", async () => {
    assert.equal(await page.getAttribute('#run-list li[data-run="broken"]', "data-status"), "corrupt");
    await page.click('#run-list li[data-run="broken"]');
    await page.waitForFunction(() => document.querySelector("#run-title")?.textContent?.startsWith("broken"));
    assert.match((await page.textContent("#problems"))!, /config\.json is not valid JSON/);
    assert.equal(await page.textContent("#final-loss"), "2.5000");
    assert.equal(await page.getAttribute('#run-list li[data-run="a"]', "data-status"), "ok");
  });

  it("grows a curve while lines are appended to metrics.jsonl, a cut line waiting for its newline", async () => {
    await page.click('#run-list li[data-run="live"]');
    await page.waitForFunction(() => document.querySelector("#run-title")?.textContent?.startsWith("live"));
    const before = Number(await page.getAttribute('#charts polyline[data-series="loss"]', "data-points"));
    assert.equal(before, 20);
    const t = performance.now();
    let lastLoss = 0;
    for (let k = 0; k < 3; k++) {
      const added = Array.from({ length: 10 }, (_, i) => stepLine(210 + 10 * (10 * k + i), 500, 3));
      lastLoss = added.at(-1)!.loss as number;
      await appendLines(join(runs, "live"), added);
      await new Promise((r) => setTimeout(r, 150));
    }
    const { appendFile } = await import("node:fs/promises");
    const cut = JSON.stringify(stepLine(520, 500, 3));
    await appendFile(join(runs, "live", "metrics.jsonl"), cut.slice(0, 40));
    await page.waitForFunction(
      () =>
        document.querySelector('#charts polyline[data-series="loss"]')?.getAttribute("data-points") === "50",
    );
    timings.push(`live update seen after ${((performance.now() - t) / 1000).toFixed(2)} s`);
    assert.equal(await page.textContent("#final-step"), "500");
    assert.ok(Math.abs(Number(await page.textContent("#final-loss")) - lastLoss) < 5e-5);
    await appendFile(join(runs, "live", "metrics.jsonl"), `${cut.slice(40)}\n`);
    await page.waitForFunction(() => document.querySelector("#final-step")?.textContent === "520");
    assert.equal(await page.getAttribute('#charts polyline[data-series="loss"]', "data-points"), "51");
    assert.equal(await page.isVisible("#live-indicator"), true);
  });

  it("overlays two runs' curves", async () => {
    await page.click('#tabs button[data-tab="compare"]');
    await page.selectOption("#cmp-a", "a");
    await page.selectOption("#cmp-b", "b");
    await page.waitForSelector('#compare-charts polyline[data-series="b: loss"]');
    assert.equal(
      await page.getAttribute('#compare-charts polyline[data-series="a: loss"]', "data-points"),
      "120",
    );
    assert.equal(
      await page.getAttribute('#compare-charts polyline[data-series="b: loss"]', "data-points"),
      "90",
    );
  });

  it("draws the embedding map with one point per item and the pair-similarity histograms", async () => {
    const t = performance.now();
    await page.click('#tabs button[data-tab="map"]');
    await page.waitForSelector("#map svg.map", { timeout: 60_000 });
    timings.push(`map ${((performance.now() - t) / 1000).toFixed(2)} s`);
    const video = await page.$$eval('#map .pt[data-kind="video"]', (els) => els.length);
    const text = await page.$$eval('#map .pt[data-kind="text"]', (els) => els.length);
    assert.equal(video, windows.length);
    assert.equal(text, windows.length);
    const groups = new Set(
      await page.$$eval("#map .pt", (els) => els.map((e) => e.getAttribute("data-group"))),
    );
    assert.deepEqual([...groups].sort(), [...new Set(windows.map((w) => w.concept))].sort());
    assert.ok((await page.$$("#hist rect.bar")).length > 2);
    await screenshot("serve-map.png");
    await page.selectOption("#map-colour", "source");
    await page.waitForFunction(() => document.querySelector("#map .pt")?.getAttribute("data-group") !== null);
    const sources = new Set(
      await page.$$eval("#map .pt", (els) => els.map((e) => e.getAttribute("data-group"))),
    );
    assert.deepEqual([...sources].sort(), ["audioset", "howto100m"]);
  });

  it("finds a concept's window by its word, shows its frame and plays exactly that window", async () => {
    const concept = CONCEPTS.find((c) => windows.some((w) => w.concept === c.words[0]))!;
    await page.click('#tabs button[data-tab="search"]');
    const t = performance.now();
    await page.fill("#search-q", concept.words[1]);
    await page.click("#search-form button");
    await page.waitForFunction(() => {
      const img = document.querySelector(".hit img") as BrowserImage | null;
      return img?.complete && img.naturalWidth > 0;
    });
    timings.push(`search with thumbnails ${((performance.now() - t) / 1000).toFixed(2)} s`);
    const first = await page.$eval(".hit", (e) => e.getAttribute("data-file"));
    const firstWhere = await page.textContent(".hit .where");
    const start = Number(/ (\d+(\.\d+)?)–/.exec(firstWhere!)![1]);
    const match = windows.find((w) => w.file === first && w.start === start)!;
    assert.equal(match.concept, concept.words[0], `first hit ${first} @ ${start}`);
    // The thumbnail is the frame at the window's middle: the concept's colour is on it.
    const share = await page.$eval(
      ".hit img",
      (img, rgb) => {
        const i = img as BrowserImage;
        const canvas = document.createElement("canvas");
        canvas.width = i.naturalWidth;
        canvas.height = i.naturalHeight;
        const ctx = canvas.getContext("2d")!;
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let near = 0;
        for (let p = 0; p < px.length; p += 4) {
          const d = Math.abs(px[p] - rgb[0]) + Math.abs(px[p + 1] - rgb[1]) + Math.abs(px[p + 2] - rgb[2]);
          if (d < 90) near++;
        }
        return near / (px.length / 4);
      },
      [...concept.color],
    );
    assert.ok(share > 0.01, `${(share * 100).toFixed(2)}% of the thumbnail has the concept's colour`);
    await page.click(".hit");
    await page.waitForFunction(
      () => (document.querySelector("#player") as BrowserVideo).dataset.stopped === "true",
      null,
      {
        timeout: 30_000,
      },
    );
    const at = await page.$eval("#player", (v) => (v as BrowserVideo).currentTime);
    assert.ok(
      at >= match.end - 0.05 && at < match.end + 0.6,
      `stopped at ${at}, window ${match.start}-${match.end}`,
    );
    await screenshot("serve-search.png");
  });

  it("raised no error in the page", () => {
    assert.deepEqual(pageErrors, []);
  });
});
